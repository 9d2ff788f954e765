{{/* Chart name. */}}
{{- define "rig.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: resource name prefix. */}}
{{- define "rig.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "rig.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rig.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rig.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rig.labels" -}}
helm.sh/chart: {{ include "rig.chart" . }}
{{ include "rig.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: admission-webhook
{{- end }}

{{- define "rig.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rig.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "rig.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Secret with tls.crt/tls.key (and ca.crt) mounted into the pods. */}}
{{- define "rig.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "rig.fullname" .)) .Values.certificates.secretName }}
{{- end }}

{{/* The DNS name the API server dials: <svc>.<ns>.svc */}}
{{- define "rig.serviceHost" -}}
{{- printf "%s.%s.svc" (include "rig.fullname" .) .Release.Namespace }}
{{- end }}

{{- define "rig.validatingName" -}}
{{- include "rig.fullname" . }}
{{- end }}

{{- define "rig.mutatingName" -}}
{{- include "rig.fullname" . }}
{{- end }}

{{- define "rig.certificateName" -}}
{{- printf "%s-serving" (include "rig.fullname" .) }}
{{- end }}

{{/* Refuse values that would make the installation unsafe or broken. */}}
{{- define "rig.validateValues" -}}
{{- $mode := .Values.certificates.mode }}
{{- if not (has $mode (list "selfSigned" "certManager" "existingSecret")) }}
{{- fail (printf "certificates.mode must be selfSigned, certManager or existingSecret, not %q" $mode) }}
{{- end }}
{{- if eq $mode "existingSecret" }}
{{- if not .Values.certificates.secretName }}
{{- fail "certificates.secretName is required when certificates.mode is existingSecret" }}
{{- end }}
{{- if not .Values.certificates.existingSecret.caBundle }}
{{- fail "certificates.existingSecret.caBundle (base64 PEM) is required when certificates.mode is existingSecret" }}
{{- end }}
{{- end }}
{{- if not (has .Values.webhook.failurePolicy (list "Fail" "Ignore")) }}
{{- fail (printf "webhook.failurePolicy must be Fail or Ignore, not %q" .Values.webhook.failurePolicy) }}
{{- end }}
{{- $t := int .Values.webhook.timeoutSeconds }}
{{- if or (lt $t 1) (gt $t 30) }}
{{- fail "webhook.timeoutSeconds must be from 1 to 30" }}
{{- end }}
{{- $needed := add (int .Values.preStopSleepSeconds) (int .Values.server.shutdownDelaySeconds) }}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $needed) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be longer than preStopSleepSeconds + server.shutdownDelaySeconds (%d)" (int .Values.terminationGracePeriodSeconds) (int $needed)) }}
{{- end }}
{{- end }}

{{/*
The caBundle for the webhook configurations (base64 PEM), or "" when cert-manager injects it.
selfSigned: generated once per render in certs-selfsigned (see rig.selfSignedMaterial).
*/}}
{{- define "rig.caBundle" -}}
{{- include "rig.validateValues" . }}
{{- $mode := .Values.certificates.mode }}
{{- if eq $mode "selfSigned" }}
{{- (include "rig.selfSignedMaterial" . | fromYaml).ca }}
{{- else if eq $mode "existingSecret" }}
{{- .Values.certificates.existingSecret.caBundle }}
{{- end }}
{{- end }}

{{/*
selfSigned certificate material as YAML {data: {...base64...}, annotations: {...}, ca: <base64 ca.crt>,
crt: <base64 tls.crt>}. The Secret layout is the one the webhook's certificate manager keeps
(src/certs/manager.ts): tls.crt/tls.key serving pair, ca.crt trusted CA bundle, signer.crt/signer.key
the signing CA, next.crt/next.key a CA being rotated in. An existing usable Secret is reused as is
(so upgrades keep the certificate and the caBundle stable, including one the webhook renewed);
otherwise a CA and a serving certificate for the Service's DNS names are generated. The result is
memoised in .Values so that the Secret and every webhook configuration in one render agree.
*/}}
{{- define "rig.selfSignedMaterial" -}}
{{- if not (hasKey .Values "_rigSelfSigned") }}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "rig.tlsSecretName" .) }}
{{- $m := dict }}
{{- $data := dict }}
{{- if $secret }}{{ $data = default (dict) $secret.data }}{{ end }}
{{- if and (hasKey $data "ca.crt") (hasKey $data "tls.crt") (hasKey $data "tls.key") (hasKey $data "signer.crt") (hasKey $data "signer.key") }}
{{- $annotations := dict }}
{{- $since := index (default (dict) $secret.metadata.annotations) "redis-istio-guard.io/next-ca-since" }}
{{- if $since }}{{ $_ := set $annotations "redis-istio-guard.io/next-ca-since" $since }}{{ end }}
{{- $m = dict "data" $data "annotations" $annotations "ca" (index $data "ca.crt") "crt" (index $data "tls.crt") }}
{{- else }}
{{- $svc := include "rig.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- $days := int .Values.certificates.selfSigned.validityDays }}
{{- $ca := genCA (printf "%s-tls-ca" $svc) $days }}
{{- $dns := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) }}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc $ns) nil $dns $days $ca }}
{{- $data = dict "tls.crt" ($cert.Cert | b64enc) "tls.key" ($cert.Key | b64enc) "ca.crt" ($ca.Cert | b64enc) "signer.crt" ($ca.Cert | b64enc) "signer.key" ($ca.Key | b64enc) }}
{{- $m = dict "data" $data "annotations" (dict) "ca" ($ca.Cert | b64enc) "crt" ($cert.Cert | b64enc) }}
{{- end }}
{{- $_ := set .Values "_rigSelfSigned" $m }}
{{- end }}
{{- toYaml (get .Values "_rigSelfSigned") }}
{{- end }}

{{/* namespaceSelector shared by both webhooks. */}}
{{- define "rig.namespaceSelector" -}}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        {{- range (concat (list "kube-system" .Release.Namespace) .Values.webhook.excludeNamespaces) | uniq }}
        - {{ . | quote }}
        {{- end }}
    - key: {{ .Values.webhook.optOutLabel.key | quote }}
      operator: NotIn
      values:
        - {{ .Values.webhook.optOutLabel.value | quote }}
{{- end }}

{{/* clientConfig: call with (dict "root" $ "path" "/validate"). */}}
{{- define "rig.clientConfig" -}}
{{- $caBundle := include "rig.caBundle" .root }}
clientConfig:
  service:
    name: {{ include "rig.fullname" .root }}
    namespace: {{ .root.Release.Namespace }}
    path: {{ .path }}
    port: 443
  {{- with $caBundle }}
  caBundle: {{ . }}
  {{- end }}
{{- end }}
