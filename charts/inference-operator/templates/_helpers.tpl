{{- define "infop.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "infop.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "infop.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "infop.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- /* The scaler's TLS: the ClusterTriggerAuthentication KEDA dials it with, and the Secrets. */ -}}
{{- define "infop.scalerAuth" -}}
{{ printf "%s-%s-scaler" .Release.Namespace (include "infop.fullname" .) | trunc 253 }}
{{- end -}}
{{- define "infop.scalerTlsSecret" -}}
{{ printf "%s-scaler-tls" (include "infop.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end -}}
{{- define "infop.scalerClientSecret" -}}
{{ printf "%s-%s-scaler-client" .Release.Namespace (include "infop.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end -}}
