{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "iii-cluster.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name used for every object. */}}
{{- define "iii-cluster.fullname" -}}
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

{{/* Labels of every object, without the component. */}}
{{- define "iii-cluster.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "iii-cluster.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels of the engine's objects. */}}
{{- define "iii-cluster.labels" -}}
{{ include "iii-cluster.commonLabels" . }}
app.kubernetes.io/component: engine
{{- end }}

{{/* Engine pods only (the bundled Redis has its own component label). */}}
{{- define "iii-cluster.selectorLabels" -}}
app.kubernetes.io/name: {{ include "iii-cluster.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: engine
{{- end }}

{{- define "iii-cluster.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "iii-cluster.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the worker token: the user's, or the one the chart generates. */}}
{{- define "iii-cluster.workerTokenSecretName" -}}
{{- if .Values.workerAuth.existingSecret }}
{{- .Values.workerAuth.existingSecret }}
{{- else }}
{{- printf "%s-worker-token" (include "iii-cluster.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "iii-cluster.redisName" -}}
{{- printf "%s-redis" (include "iii-cluster.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The engine's config.yaml, rendered: it feeds both the ConfigMap and the pods' checksum/config
annotation, so editing `config` (or a port it names) rolls the Deployment.
*/}}
{{- define "iii-cluster.config" -}}
{{- tpl .Values.config . }}
{{- end }}

{{/*
Exactly one Redis source (a URL, its Secret, sentinels, the nodes of a Redis Cluster, or the
bundled demo pod): the nodes are stateless and find each other through Redis, so a
release without one would be N unrelated engines.
*/}}
{{- define "iii-cluster.validateRedis" -}}
{{- $sources := 0 }}
{{- if .Values.redis.url }}{{ $sources = add1 $sources }}{{ end }}
{{- if .Values.redis.existingSecret }}{{ $sources = add1 $sources }}{{ end }}
{{- if .Values.redis.bundled.enabled }}{{ $sources = add1 $sources }}{{ end }}
{{- $sentinel := .Values.redis.sentinel | default dict }}
{{- if $sentinel.hosts }}{{ $sources = add1 $sources }}{{ end }}
{{- $cluster := .Values.redis.cluster | default dict }}
{{- if $cluster.nodes }}{{ $sources = add1 $sources }}{{ end }}
{{- if eq $sources 0 }}
{{- fail "iii-cluster: no Redis: set redis.url (redis://host:6379), redis.existingSecret (a Secret holding the URL under redis.existingSecretKey), redis.sentinel.hosts with redis.sentinel.name, redis.cluster.nodes (host:port,... of a Redis Cluster), or redis.bundled.enabled=true (demo only)" }}
{{- end }}
{{- if gt $sources 1 }}
{{- $set := list }}
{{- if .Values.redis.url }}{{ $set = append $set "redis.url" }}{{ end }}
{{- if .Values.redis.existingSecret }}{{ $set = append $set "redis.existingSecret" }}{{ end }}
{{- if $sentinel.hosts }}{{ $set = append $set "redis.sentinel.hosts" }}{{ end }}
{{- if $cluster.nodes }}{{ $set = append $set "redis.cluster.nodes" }}{{ end }}
{{- if .Values.redis.bundled.enabled }}{{ $set = append $set "redis.bundled.enabled" }}{{ end }}
{{- fail (printf "iii-cluster: set only one of redis.url, redis.existingSecret, redis.sentinel.hosts, redis.cluster.nodes and redis.bundled.enabled (set here: %s)" (join ", " $set)) }}
{{- end }}
{{- if and $sentinel.hosts (not $sentinel.name) }}
{{- fail "iii-cluster: redis.sentinel.hosts needs redis.sentinel.name (the primary's name in the sentinels, e.g. mymaster)" }}
{{- end }}
{{- if and $sentinel.name (not $sentinel.hosts) }}
{{- fail "iii-cluster: redis.sentinel.name needs redis.sentinel.hosts (host:port,host:port...)" }}
{{- end }}
{{- end }}

{{/* terminationGracePeriodSeconds: preStop sleep + drain grace + margin, in seconds. */}}
{{- define "iii-cluster.terminationGracePeriodSeconds" -}}
{{- add (int .Values.preStopSleepSeconds) (int .Values.drainGraceSeconds) (int .Values.terminationMarginSeconds) }}
{{- end }}

{{/* The headless Service whose per-pod DNS names the nodes advertise to each other (tls.enabled). */}}
{{- define "iii-cluster.nodesServiceName" -}}
{{- printf "%s-nodes" (include "iii-cluster.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
What follows a pod's label in the name it advertises: <nodes Service>.<namespace>.svc.<domain>.
The certificate carries it as a wildcard: *.<this>.
*/}}
{{- define "iii-cluster.nodesDomain" -}}
{{- printf "%s.%s.svc.%s" (include "iii-cluster.nodesServiceName" .) .Release.Namespace .Values.clusterDomain }}
{{- end }}

{{/* tls.enabled needs the certificate's Secret: the schema checks types, this the combination. */}}
{{- define "iii-cluster.validateTls" -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) }}
{{- fail (printf "iii-cluster: tls.enabled needs tls.existingSecret, a kubernetes.io/tls Secret (keys tls.crt, tls.key) whose certificate names *.%s and the names clients use; see the chart README, \"TLS\" (a cert-manager Certificate makes one)" (include "iii-cluster.nodesDomain" .)) }}
{{- end }}
{{- end }}
