{{/*
common.image: a full image reference. Registry: global.imageRegistry, then
image.registry. Then repository, then @digest if set, else :tag, else :appVersion.
Usage: include "common.image" (dict "context" . "image" .Values.image)
*/}}
{{- define "common.image" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (hasKey . "image") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.image" . (list "context" "image")) -}}
{{- end -}}
{{- $img := .image -}}
{{- if not (kindIs "map" $img) -}}
{{- fail (printf "common.image: argument \"image\" must be a dict with repository/tag, got %s" (kindOf $img)) -}}
{{- end -}}
{{- if not $img.repository -}}
{{- fail "common.image: image.repository is required" -}}
{{- end -}}
{{- $registry := coalesce ((.context.Values.global).imageRegistry) $img.registry "" -}}
{{- $ref := $img.repository -}}
{{- if $registry -}}
{{- $ref = printf "%s/%s" (trimSuffix "/" $registry) $img.repository -}}
{{- end -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $ref $img.digest -}}
{{- else -}}
{{- $tag := default .context.Chart.AppVersion $img.tag -}}
{{- if not $tag -}}
{{- fail (printf "common.image: %s has neither tag, digest nor chart appVersion" $ref) -}}
{{- end -}}
{{- printf "%s:%s" $ref (toString $tag) -}}
{{- end -}}
{{- end -}}

{{/*
common.imagePullSecrets: global.imagePullSecrets plus the component's own.
Usage: include "common.imagePullSecrets" (dict "context" . "secrets" .Values.imagePullSecrets)
*/}}
{{- define "common.imagePullSecrets" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context") (kindIs "map" .context) (hasKey .context "Release") (hasKey .context "Chart")) -}}
{{- include "common.args.require" (list "common.imagePullSecrets" . (list "context")) -}}
{{- end -}}
{{- $all := concat (((.context.Values.global).imagePullSecrets) | default list) (.secrets | default list) | uniq -}}
{{- if $all }}
imagePullSecrets:
{{- range $all }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}
