{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "conveyor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: <release>-<chart> unless the release already contains it. */}}
{{- define "conveyor.fullname" -}}
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

{{- define "conveyor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Common labels. */}}
{{- define "conveyor.labels" -}}
helm.sh/chart: {{ include "conveyor.chart" . }}
{{ include "conveyor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: conveyor
{{- end }}

{{- define "conveyor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "conveyor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component; call with (dict "root" $ "component" "api"). */}}
{{- define "conveyor.componentLabels" -}}
{{ include "conveyor.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "conveyor.componentSelectorLabels" -}}
{{ include "conveyor.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "conveyor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "conveyor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image of a component; call with (dict "root" $ "image" .Values.image.api). */}}
{{- define "conveyor.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .root.Values.image.tag) }}
{{- end }}

{{/* Name of the Secret given to every Conveyor container by envFrom: existingSecret, or the
chart's own Secret (CONVEYOR_REDIS_URL of an external Redis). */}}
{{- define "conveyor.secretName" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else }}
{{- include "conveyor.fullname" . }}
{{- end }}
{{- end }}

{{/* "true" when the chart creates its own Secret: it has something to hold. */}}
{{- define "conveyor.createSecret" -}}
{{- if not (or .Values.existingSecret .Values.redis.bundled.enabled) }}true{{ end }}
{{- end }}

{{- define "conveyor.redisName" -}}
{{- printf "%s-redis" (include "conveyor.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Redis URL of an external Redis, held by the chart's Secret. */}}
{{- define "conveyor.redisUrl" -}}
{{- if .Values.redis.url }}
{{- .Values.redis.url }}
{{- else }}
{{- fail "set redis.url, existingSecret or redis.bundled.enabled=true" }}
{{- end }}
{{- end }}

{{/* Secret and key holding the bundled Redis's password: redis.bundled.auth.existingSecret,
or the chart's generated <fullname>-redis-auth. */}}
{{- define "conveyor.redisAuthSecretName" -}}
{{- default (printf "%s-redis-auth" (include "conveyor.fullname" .)) .Values.redis.bundled.auth.existingSecret }}
{{- end }}

{{- define "conveyor.redisAuthSecretKey" -}}
{{- if .Values.redis.bundled.auth.existingSecret }}
{{- .Values.redis.bundled.auth.existingSecretKey }}
{{- else }}
{{- "redis-password" }}
{{- end }}
{{- end }}

{{/* A generated secret value that survives `helm upgrade`: the value already in the cluster
(lookup), else a new random one. Call with (dict "root" $ "name" SECRET "key" KEY "length" N).
Offline rendering (helm template) has no cluster, so it gets a new value each time. */}}
{{- define "conveyor.stableRandom" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .name }}
{{- $old := "" }}
{{- if $existing }}
{{- $old = index (default (dict) $existing.data) .key | default "" }}
{{- end }}
{{- if $old }}
{{- $old | b64dec }}
{{- else }}
{{- randAlphaNum .length }}
{{- end }}
{{- end }}

{{/* "true" when the api container gets CONVEYOR_API_TOKENS from the token Secret by
secretKeyRef: the Secret api.tokenSecret.name, or the chart's <fullname>-api-token holding
api.tokens or, when neither they nor existingSecret give tokens, a generated one. Otherwise
(existingSecret alone) the tokens come by envFrom. */}}
{{- define "conveyor.tokenFromSecretRef" -}}
{{- if and (eq .Values.api.auth "token") (or .Values.api.tokenSecret.name .Values.api.tokens (not .Values.existingSecret)) }}true{{ end }}
{{- end }}

{{/* "true" when the chart creates the API token Secret. */}}
{{- define "conveyor.createTokenSecret" -}}
{{- if and (include "conveyor.tokenFromSecretRef" .) (not .Values.api.tokenSecret.name) }}true{{ end }}
{{- end }}

{{- define "conveyor.tokenSecretName" -}}
{{- default (printf "%s-api-token" (include "conveyor.fullname" .)) .Values.api.tokenSecret.name }}
{{- end }}

{{- define "conveyor.tokenSecretKey" -}}
{{- if .Values.api.tokenSecret.name }}
{{- .Values.api.tokenSecret.key }}
{{- else }}
{{- "token" }}
{{- end }}
{{- end }}

{{/* Values that contradict each other; fail the render with what to fix. */}}
{{- define "conveyor.checkAuthValues" -}}
{{- if eq .Values.api.auth "none" }}
{{- if or .Values.api.tokens .Values.api.tokenSecret.name }}
{{- fail "api.auth=none leaves the API open: remove api.tokens and api.tokenSecret.name, or use api.auth=token" }}
{{- end }}
{{- if eq .Values.metricsAuth "token" }}
{{- fail "metricsAuth=token needs api.auth=token" }}
{{- end }}
{{- end }}
{{- if and .Values.api.tokens .Values.api.tokenSecret.name }}
{{- fail "give the API tokens either in api.tokens or in api.tokenSecret, not both" }}
{{- end }}
{{- end }}

{{/* Secret and key of the bearer token the ServiceMonitor sends when metricsAuth=token. */}}
{{- define "conveyor.scrapeTokenSecret" -}}
{{- $s := .Values.serviceMonitor.bearerTokenSecret }}
{{- if $s.name -}}
name: {{ $s.name }}
key: {{ $s.key }}
{{- else if and (include "conveyor.tokenFromSecretRef" .) (le (len .Values.api.tokens) 1) -}}
name: {{ include "conveyor.tokenSecretName" . }}
key: {{ include "conveyor.tokenSecretKey" . }}
{{- else }}
{{- fail "metricsAuth=token with several api.tokens or with existingSecret: set serviceMonitor.bearerTokenSecret.{name,key} to a Secret holding one token" }}
{{- end }}
{{- end }}

{{/* host:port of Redis for the KEDA scaler. */}}
{{- define "conveyor.kedaRedisAddress" -}}
{{- if .Values.worker.autoscaling.address }}
{{- .Values.worker.autoscaling.address }}
{{- else if .Values.redis.bundled.enabled }}
{{- printf "%s:6379" (include "conveyor.redisName" .) }}
{{- else }}
{{- fail "worker.autoscaling.address (host:port of Redis for KEDA) is required without the bundled Redis" }}
{{- end }}
{{- end }}

{{/* Environment shared by every Conveyor container: ConfigMap plus the Secret. */}}
{{- define "conveyor.envFrom" -}}
- configMapRef:
    name: {{ include "conveyor.fullname" . }}
{{- if or .Values.existingSecret (include "conveyor.createSecret" .) }}
- secretRef:
    name: {{ include "conveyor.secretName" . }}
{{- end }}
{{- end }}

{{/* Secret environment of a Conveyor container, by secretKeyRef so that no secret is in the
pod spec or in argv. With the bundled Redis: REDIS_PASSWORD from its Secret and
CONVEYOR_REDIS_URL built from it by Kubernetes' $(VAR) expansion (the password must
therefore be URL-safe: the generated one is alphanumeric). The api container also gets
CONVEYOR_API_TOKENS from the token Secret; workers and the scheduler never see a token.
Call with (dict "root" $ "component" "api"). */}}
{{- define "conveyor.secretEnv" -}}
{{- $root := .root }}
{{- if $root.Values.redis.bundled.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "conveyor.redisAuthSecretName" $root }}
      key: {{ include "conveyor.redisAuthSecretKey" $root }}
- name: CONVEYOR_REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "conveyor.redisName" $root) | quote }}
{{- end }}
{{- if and (include "conveyor.tokenFromSecretRef" $root) (eq .component "api") }}
- name: CONVEYOR_API_TOKENS
  valueFrom:
    secretKeyRef:
      name: {{ include "conveyor.tokenSecretName" $root }}
      key: {{ include "conveyor.tokenSecretKey" $root }}
{{- end }}
{{- end }}

{{/* Pod-level annotations that roll the pods when their configuration changes. */}}
{{- define "conveyor.configChecksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if include "conveyor.createSecret" . }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}

{{/* The writable /tmp of a read-only root filesystem. */}}
{{- define "conveyor.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}

{{- define "conveyor.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* HTTP probes; call with (dict "root" $ "port" "http"). */}}
{{- define "conveyor.probes" -}}
{{- $p := .root.Values.probes -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: {{ .port }}
  initialDelaySeconds: {{ $p.liveness.initialDelaySeconds }}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
readinessProbe:
  httpGet:
    path: /readyz
    port: {{ .port }}
  initialDelaySeconds: {{ $p.readiness.initialDelaySeconds }}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
{{- end }}

{{/* Scheduling fields of a pod; call with the component's values. */}}
{{- define "conveyor.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
