{{- define "datarestor.name" -}}datarestor-operator{{- end -}}
{{- define "datarestor.labels" -}}
app.kubernetes.io/name: {{ include "datarestor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
