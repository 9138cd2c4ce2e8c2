{{/* Names. The webhook's Service DNS name must match the serving certificate's SANs. */}}
{{- define "fsi.name" -}}
flipt-sidecar-injector
{{- end }}

{{- define "fsi.fullname" -}}
{{- if contains "flipt-sidecar-injector" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-flipt-sidecar-injector" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end }}

{{- define "fsi.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fsi.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "fsi.labels" -}}
{{ include "fsi.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: flipt-sidecar-injector
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "fsi.serviceAccountName" -}}
{{- default (include "fsi.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "fsi.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "fsi.fullname" .)) .Values.tls.secretName }}
{{- end }}

{{- define "fsi.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if eq $tag "latest" }}{{ fail "image.tag: pin a version, not latest" }}{{ end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end }}

{{/* The Service's DNS names; the API server calls <service>.<namespace>.svc. */}}
{{- define "fsi.dnsNames" -}}
{{- $svc := include "fsi.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson -}}
{{- end }}

{{/* The injector's config file: the values' config with the release namespace as its own. */}}
{{- define "fsi.configYaml" -}}
{{- $config := deepCopy .Values.config -}}
{{- $injector := merge (dict "namespace" .Release.Namespace) (omit (default dict $config.injector) "namespace") -}}
{{- $_ := set $config "injector" $injector -}}
{{- toYaml $config -}}
{{- end }}
