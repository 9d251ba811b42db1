{{/*
common.ruleFile: a rule file of the chart's alert templating scheme (Prometheus' and Loki's ruler
alike), rendered. The file is plain YAML read with .Files.Get, never a Helm template. For each
alert, its settings section <settingsPath>.<Alert> in values (`settings`, the map of every alert's)
supplies placeholders: `enabled` keeps or drops the alert; a list value ${key} becomes the regex
matching any of its items (regex-quoted, joined with |) and ${keyCount} their number; any other
value ${key} is written as it is; `globals` ({key: value}) supplies the placeholders every alert
may use (an alert's own settings win). An alert with `requires: <dotted path into .Values>` is
left out while that value is off (the key itself is removed). `transform` (optional) names a
template that gets (dict "context" . "rule" <the rule>) and returns the rule as YAML, for a
chart's own rewriting before the substitution. Groups left empty are left out.
Fails, naming the file and the alert: a file that does not parse, an alert without a settings
section, a `requires` path that does not exist, a placeholder left over (a typo).
Renders {groups: [...]} as YAML, or nothing when no group is left.
Usage: include "common.ruleFile" (dict "context" . "file" "files/rules/x.yaml" "settings" .Values.alerts
  "settingsPath" "alerts" "globals" (dict "runbookBaseUrl" ...) ["transform" "loki.ruleTeam"])
*/}}
{{- define "common.ruleFile" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "file") (hasKey . "settings") (hasKey . "settingsPath") (hasKey . "globals") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.ruleFile" . (list "context" "file" "settings" "settingsPath" "globals")) -}}
{{- end -}}
{{- $root := .context -}}
{{- $args := . -}}
{{- $chart := $root.Chart.Name -}}
{{- $file := $root.Files.Get .file | fromYaml -}}
{{- if or (not $file) (hasKey $file "Error") -}}
{{- fail (printf "%s: %s does not parse: %v" $chart .file ($file | default dict).Error) -}}
{{- end -}}
{{- $groups := list -}}
{{- range $group := $file.groups -}}
{{- $rules := list -}}
{{- range $rule := $group.rules -}}
{{- if not (hasKey $args.settings $rule.alert) -}}
{{- fail (printf "%s: alert %q in %s has no %s.%s section in values" $chart $rule.alert $args.file $args.settingsPath $rule.alert) -}}
{{- end -}}
{{- $settings := index $args.settings $rule.alert -}}
{{- $required := true -}}
{{- with $rule.requires -}}
{{- $required = include "common.valueAt" (dict "context" $root "path" .) -}}
{{- end -}}
{{- if and $settings.enabled $required -}}
{{- $rule = omit $rule "requires" -}}
{{- $text := "" -}}
{{- if $args.transform -}}
{{- $text = include $args.transform (dict "context" $root "rule" $rule) -}}
{{- else -}}
{{- $text = toYaml $rule -}}
{{- end -}}
{{- $values := dict -}}
{{- range $key, $value := omit $settings "enabled" -}}
{{- if kindIs "slice" $value -}}
{{- $quoted := list -}}
{{- range $value }}{{ $quoted = append $quoted (regexQuoteMeta (toString .)) }}{{ end -}}
{{- $_ := set $values $key (join "|" $quoted) -}}
{{- $_ := set $values (printf "%sCount" $key) (len $value) -}}
{{- else -}}
{{- $_ := set $values $key $value -}}
{{- end -}}
{{- end -}}
{{- range $key, $value := merge $values $args.globals -}}
{{- $text = replace (printf "${%s}" $key) (toString $value) $text -}}
{{- end -}}
{{- if contains "${" $text -}}
{{- fail (printf "%s: alert %s keeps an unknown placeholder after substitution:\n%s" $chart $rule.alert $text) -}}
{{- end -}}
{{- $rules = append $rules (fromYaml $text) -}}
{{- end -}}
{{- end -}}
{{- if $rules -}}
{{- $groups = append $groups (merge (dict "rules" $rules) (omit $group "rules")) -}}
{{- end -}}
{{- end -}}
{{- if $groups -}}
{{- toYaml (dict "groups" $groups) -}}
{{- end -}}
{{- end -}}

{{/*
common.valueAt: "true" when the value at a dotted path of the chart's values is set (truthy), ""
when it is off; a path that does not exist fails the render (a typo would silently drop what
depends on it): `<chart>: requires "<path>": no such value`.
Usage: include "common.valueAt" (dict "context" . "path" "scrape.nodeExporter")
*/}}
{{- define "common.valueAt" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "path") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.valueAt" . (list "context" "path")) -}}
{{- end -}}
{{- $here := .context.Values -}}
{{- range $key := splitList "." .path -}}
{{- if not (and (kindIs "map" $here) (hasKey $here $key)) -}}
{{- fail (printf "%s: requires %q: no such value" $.context.Chart.Name $.path) -}}
{{- end -}}
{{- $here = index $here $key -}}
{{- end -}}
{{- if $here }}true{{ end -}}
{{- end -}}
