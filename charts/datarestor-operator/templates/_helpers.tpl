{{- define "datarestor.name" -}}datarestor-operator{{- end -}}
{{- define "datarestor.labels" -}}
app.kubernetes.io/name: {{ include "datarestor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
{{- /* A duration such as 90s, 30m, 1h or 2d as seconds, for alert expressions. */ -}}
{{- define "datarestor.seconds" -}}
{{- $d := toString . -}}
{{- $units := dict "s" 1 "m" 60 "h" 3600 "d" 86400 -}}
{{- $unit := substr (int (sub (len $d) 1)) (len $d) $d -}}
{{- if hasKey $units $unit -}}
{{- mul (trimSuffix $unit $d | int) (get $units $unit) -}}
{{- else -}}
{{- fail (printf "%q is not a duration like 90s, 30m, 1h or 2d" $d) -}}
{{- end -}}
{{- end -}}
