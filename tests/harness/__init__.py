"""Test harness for phase5-monitoring: tool lookup, one render adapter, a manifest index."""
