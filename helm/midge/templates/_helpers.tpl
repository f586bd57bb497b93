{{/* Names and labels shared by every template. */}}

{{- define "midge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name: resource names and the pods' prefix. Kept to 52 characters so that
"<fullname>-headless" and the StatefulSet's controller-revision label stay within 63.
*/}}
{{- define "midge.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "midge.headless" -}}
{{- printf "%s-headless" (include "midge.fullname" .) }}
{{- end }}

{{- define "midge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "midge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "midge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "midge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: broker
{{- end }}

{{- define "midge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "midge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "midge.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "midge.tlsSecret" -}}
{{- default (printf "%s-tls" (include "midge.fullname" .)) .Values.tls.existingSecret }}
{{- end }}

{{- define "midge.authSecret" -}}
{{- default (printf "%s-auth" (include "midge.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/* Whether an ACL file is mounted. */}}
{{- define "midge.hasAcl" -}}
{{- if and .Values.auth.enabled (or (and .Values.auth.existingSecret .Values.auth.aclFromSecret) (and (not .Values.auth.existingSecret) .Values.auth.acl)) }}true{{ end }}
{{- end }}

{{/* Whether the TLS Secret carries a CA (client certificates are then checked against it). */}}
{{- define "midge.hasCa" -}}
{{- if and .Values.tls.enabled (or .Values.tls.existingSecret .Values.tls.ca) .Values.tls.requireClientCertificate }}true{{ end }}
{{- end }}

{{/*
The cluster address of pod N: "<fullname>-N.<headless>.<namespace>.svc.<domain>:<port>".
Called with (list $ N). The pods' own cluster.advertise has exactly this form (with
$(POD_NAME) for the pod name), so seed 0 equals pod 0's advertise string, which is how pod 0
knows it is the one to bootstrap the cluster.
*/}}
{{- define "midge.peerAddress" -}}
{{- $root := index . 0 -}}
{{- $ordinal := index . 1 -}}
{{- printf "%s-%d.%s.%s.svc.%s:%d" (include "midge.fullname" $root) (int $ordinal) (include "midge.headless" $root) $root.Release.Namespace $root.Values.cluster.clusterDomain (int $root.Values.cluster.port) }}
{{- end }}

{{/* The seeds: pods 0 .. min(replicas, 3) - 1, pod 0 first, comma-separated. */}}
{{- define "midge.seeds" -}}
{{- $n := min 3 (int .Values.replicaCount) -}}
{{- $seeds := list -}}
{{- range $i := until (int $n) }}
{{- $seeds = append $seeds (include "midge.peerAddress" (list $ $i)) }}
{{- end }}
{{- join "," $seeds }}
{{- end }}

{{/*
maxUnavailable of the PodDisruptionBudget: as many pods as can be down while a majority of
the voters (floor(v/2)+1, v = min(voters, replicas)) and a majority of all nodes
(floor(n/2)+1) stay up, whichever allows fewer.
*/}}
{{- define "midge.maxUnavailable" -}}
{{- $n := int .Values.replicaCount -}}
{{- $v := min (int .Values.cluster.voters) $n -}}
{{- min (div (sub $n 1) 2) (div (sub $v 1) 2) }}
{{- end }}

{{- define "midge.terminationGracePeriod" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add (int .Values.config.shutdownGraceSecs) (int .Values.preStopSleepSeconds) 10 }}
{{- else }}
{{- int .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
A value written as TOML: strings quoted (JSON string escapes are valid TOML), whole numbers
without a fraction (Helm reads every number as a float), booleans, arrays of those.
*/}}
{{- define "midge.tomlValue" -}}
{{- $v := . -}}
{{- if kindIs "string" $v }}{{ toJson $v }}
{{- else if kindIs "bool" $v }}{{ $v }}
{{- else if or (kindIs "float64" $v) (kindIs "int" $v) (kindIs "int64" $v) }}
{{- if eq (float64 $v) (floor $v) }}{{ int64 $v }}{{ else }}{{ $v }}{{ end }}
{{- else if kindIs "slice" $v }}[{{ range $i, $e := $v }}{{ if $i }}, {{ end }}{{ include "midge.tomlValue" $e }}{{ end }}]
{{- else }}{{ fail (printf "midge.toml: cannot write %v (%s) as a TOML value" $v (kindOf $v)) }}
{{- end }}
{{- end }}

{{/*
A TOML table: (dict "prefix" "a.b" "table" $map). Plain keys first, then each sub-table
under its dotted name.
*/}}
{{- define "midge.tomlTable" -}}
{{- $prefix := .prefix -}}
{{- $table := .table -}}
{{- if $prefix }}
[{{ $prefix }}]
{{- end }}
{{- range $k, $v := $table }}
{{- if not (kindIs "map" $v) }}
{{ $k }} = {{ include "midge.tomlValue" $v }}
{{- end }}
{{- end }}
{{- range $k, $v := $table }}
{{- if kindIs "map" $v }}
{{ include "midge.tomlTable" (dict "prefix" (ternary $k (printf "%s.%s" $prefix $k) (eq $prefix "")) "table" $v) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The settings midge.toml gets from the chart: the data directory, every listener bound to all
interfaces with its files, the admin listener, the log and drain settings. config.settings is
merged underneath, so these win.
*/}}
{{- define "midge.configDict" -}}
{{- $auth := dict -}}
{{- if .Values.auth.enabled }}
{{- $_ := set $auth "password_file" "/etc/midge/auth/passwd" }}
{{- $_ := set $auth "allow_anonymous" .Values.auth.allowAnonymous }}
{{- end }}
{{- $tlsFiles := dict "certfile" "/etc/midge/tls/tls.crt" "keyfile" "/etc/midge/tls/tls.key" -}}
{{- if include "midge.hasCa" . }}
{{- $_ := set $tlsFiles "cafile" "/etc/midge/tls/ca.crt" }}
{{- $_ := set $tlsFiles "require_certificate" true }}
{{- $_ := set $tlsFiles "use_identity_as_username" .Values.tls.useIdentityAsUsername }}
{{- end }}
{{- $listeners := dict -}}
{{- if .Values.tls.enabled }}
{{- $_ := set $listeners "tls" (merge (dict "bind" "0.0.0.0" "port" (int .Values.listeners.tls.port) "protocol" "tls") $tlsFiles $auth) }}
{{- end }}
{{- if .Values.listeners.ws.enabled }}
{{- $_ := set $listeners "ws" (merge (dict "bind" "0.0.0.0" "port" (int .Values.listeners.ws.port) "protocol" "ws") $auth) }}
{{- end }}
{{- if and .Values.tls.enabled .Values.listeners.wss.enabled }}
{{- $_ := set $listeners "wss" (merge (dict "bind" "0.0.0.0" "port" (int .Values.listeners.wss.port) "protocol" "wss") $tlsFiles $auth) }}
{{- end }}
{{- $managed := dict
  "data_dir" "/data"
  "listener" (merge (dict "bind" "0.0.0.0" "port" (int .Values.listeners.mqtt.port) "protocol" "mqtt") $auth)
  "listeners" $listeners
  "admin" (dict "bind" "0.0.0.0" "port" (int .Values.admin.port))
  "limits" (dict "shutdown_grace_secs" (int .Values.config.shutdownGraceSecs))
  "log" (dict "level" .Values.config.logLevel "format" .Values.config.logFormat)
  "storage" (dict "fsync" .Values.config.fsync)
-}}
{{- if include "midge.hasAcl" . }}
{{- $_ := set $managed "auth" (dict "acl_file" "/etc/midge/auth/acl") }}
{{- end }}
{{- toJson (mergeOverwrite (deepCopy .Values.config.settings) $managed) }}
{{- end }}
