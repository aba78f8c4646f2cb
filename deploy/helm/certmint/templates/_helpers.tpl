{{/* Labels on every object: the kustomize base's labels plus Helm's release labels. */}}
{{- define "certmint.labels" -}}
app.kubernetes.io/name: certmint
app.kubernetes.io/part-of: certmint
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The operator's pods: the Deployment's, PDB's, Service's and NetworkPolicy's selector. */}}
{{- define "certmint.selectorLabels" -}}
app.kubernetes.io/name: certmint
app.kubernetes.io/component: controller
{{- end -}}

{{- define "certmint.namespaced" -}}
{{- if eq .Values.scope "namespaced" }}true{{ end -}}
{{- end -}}

{{/* The operator's arguments (the image's entrypoint is `certmint run`). */}}
{{- define "certmint.args" -}}
{{- $args := list -}}
{{- if include "certmint.namespaced" . -}}
{{- $args = list "-n" "$(CERTMINT_NAMESPACE)" -}}
{{- else -}}
{{- $args = list "-A" -}}
{{- end -}}
{{- $args = concat $args (list "--metrics-port" (toString .Values.metricsPort) "--log-format" .Values.logFormat) -}}
{{- if not (kindIs "invalid" .Values.renewalRate) -}}
{{- $args = concat $args (list "--renewal-rate" (toString .Values.renewalRate)) -}}
{{- end -}}
{{- if ne .Values.perCertificateMetrics "attention" -}}
{{- $args = concat $args (list "--per-certificate-metrics" .Values.perCertificateMetrics) -}}
{{- end -}}
{{- toJson (concat $args .Values.extraArgs) -}}
{{- end -}}
