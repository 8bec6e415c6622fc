{{/*
The chart's name, unless nameOverride.
*/}}
{{- define "fraudpipe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A fully qualified name: the release name, with the chart name unless the release name holds it.
Kept to 63 characters, the limit of DNS names that some object names must be.
*/}}
{{- define "fraudpipe.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "fraudpipe.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "fraudpipe.labels" -}}
helm.sh/chart: {{ include "fraudpipe.chart" . }}
{{ include "fraudpipe.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fraudpipe
{{- end }}

{{/*
Selector labels (immutable on a Deployment: never add a changing value here).
*/}}
{{- define "fraudpipe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fraudpipe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels and selector labels of one component: (dict "root" $ "component" "scorer").
*/}}
{{- define "fraudpipe.componentLabels" -}}
{{ include "fraudpipe.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "fraudpipe.componentSelectorLabels" -}}
{{ include "fraudpipe.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The service account of the fraudpipe pods.
*/}}
{{- define "fraudpipe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fraudpipe.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Prefect worker's service account (it creates flow-run Jobs, so it has a Role of its own).
*/}}
{{- define "fraudpipe.prefectWorkerName" -}}
{{- printf "%s-prefect-worker" (include "fraudpipe.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The one fraudpipe image.
*/}}
{{- define "fraudpipe.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
The Secret that holds every password.
*/}}
{{- define "fraudpipe.secretName" -}}
{{- if .Values.secrets.create }}
{{- printf "%s-secrets" (include "fraudpipe.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- required "secrets.existingSecret is empty: name the Secret that holds fraudpipe's passwords, or set secrets.create=true with secrets.values" .Values.secrets.existingSecret }}
{{- end }}
{{- end }}

{{/*
The secret settings src/fraudpipe/config.py declares required (SecretStr without a default),
as environment variable names; each is also the Secret's key. tests/deploy/test_helm_chart.py
checks this list against the settings.
*/}}
{{- define "fraudpipe.requiredSecretEnv" -}}
- FRAUDPIPE_PG_SUPERUSER_PASSWORD
- FRAUDPIPE_PG_OWNER_PASSWORD
- FRAUDPIPE_PG_APP_PASSWORD
- FRAUDPIPE_PG_READER_PASSWORD
- FRAUDPIPE_PG_ANALYST_PASSWORD
- FRAUDPIPE_PG_SERVICES_PASSWORD
- FRAUDPIPE_KAFKA_ADMIN_PASSWORD
- FRAUDPIPE_KAFKA_PUBLISHER_PASSWORD
- FRAUDPIPE_KAFKA_SCORER_PASSWORD
- FRAUDPIPE_KAFKA_READER_PASSWORD
- FRAUDPIPE_REGISTRY_ADMIN_PASSWORD
- FRAUDPIPE_REGISTRY_WRITER_PASSWORD
- FRAUDPIPE_REGISTRY_READER_PASSWORD
- FRAUDPIPE_MLFLOW_ADMIN_PASSWORD
- FRAUDPIPE_MLFLOW_TRAINER_PASSWORD
- FRAUDPIPE_MLFLOW_PROMOTER_PASSWORD
- FRAUDPIPE_MLFLOW_READER_PASSWORD
- FRAUDPIPE_MLFLOW_SERVER_SECRET
- FRAUDPIPE_PREFECT_API_PASSWORD
- FRAUDPIPE_AIRFLOW_ADMIN_PASSWORD
- FRAUDPIPE_AIRFLOW_SECRET
- FRAUDPIPE_PUSHGATEWAY_PASSWORD
{{- end }}

{{/*
One env entry read from the Secret: (dict "root" $ "name" "FRAUDPIPE_X").
*/}}
{{- define "fraudpipe.secretEnvEntry" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "fraudpipe.secretName" .root }}
      key: {{ .name }}
{{- end }}

{{/*
Where the Kafka CA bundle is mounted, when kafka.caSecret.name is set.
*/}}
{{- define "fraudpipe.kafkaCaDir" -}}
/etc/fraudpipe/kafka-ca
{{- end }}

{{/*
The environment every fraudpipe process needs: the endpoints and user names as plain values,
every password from the Secret. Settings() refuses to start without all of the passwords,
whichever of them a process uses.
*/}}
{{- define "fraudpipe.env" -}}
{{- include "fraudpipe.envEntries" . | trim }}
{{- end }}

{{- define "fraudpipe.envEntries" -}}
{{- $v := .Values -}}
{{- $plain := list
  (list "FRAUDPIPE_PG_HOST" $v.postgresql.host)
  (list "FRAUDPIPE_PG_PORT" (int64 $v.postgresql.port))
  (list "FRAUDPIPE_PG_DATABASE" $v.postgresql.database)
  (list "FRAUDPIPE_PG_SUPERUSER" $v.postgresql.superuser)
  (list "FRAUDPIPE_PG_OWNER_USER" $v.postgresql.ownerUser)
  (list "FRAUDPIPE_PG_APP_USER" $v.postgresql.appUser)
  (list "FRAUDPIPE_PG_READER_USER" $v.postgresql.readerUser)
  (list "FRAUDPIPE_PG_ANALYST_USER" $v.postgresql.analystUser)
  (list "FRAUDPIPE_PG_SERVICES_USER" $v.postgresql.servicesUser)
  (list "FRAUDPIPE_KAFKA_BOOTSTRAP_SERVERS" $v.kafka.bootstrapServers)
  (list "FRAUDPIPE_KAFKA_SECURITY_PROTOCOL" $v.kafka.securityProtocol)
  (list "FRAUDPIPE_KAFKA_SASL_MECHANISM" $v.kafka.saslMechanism)
  (list "FRAUDPIPE_KAFKA_ADMIN_BOOTSTRAP_SERVERS" ($v.kafka.adminBootstrapServers | default $v.kafka.bootstrapServers))
  (list "FRAUDPIPE_KAFKA_ADMIN_SASL_MECHANISM" $v.kafka.adminSaslMechanism)
  (list "FRAUDPIPE_KAFKA_ADMIN_USER" $v.kafka.users.admin)
  (list "FRAUDPIPE_KAFKA_PUBLISHER_USER" $v.kafka.users.publisher)
  (list "FRAUDPIPE_KAFKA_SCORER_USER" $v.kafka.users.scorer)
  (list "FRAUDPIPE_KAFKA_READER_USER" $v.kafka.users.reader)
  (list "FRAUDPIPE_KAFKA_DEFAULT_PARTITIONS" (int64 $v.kafka.partitions))
  (list "FRAUDPIPE_KAFKA_TRANSACTION_TIMEOUT_MS" (int64 $v.kafka.transactionTimeoutMs))
  (list "FRAUDPIPE_KAFKA_DELIVERY_TIMEOUT_MS" (int64 $v.kafka.deliveryTimeoutMs))
  (list "FRAUDPIPE_SCORER_EXACTLY_ONCE" $v.kafka.exactlyOnce)
  (list "FRAUDPIPE_CONSUMER_GROUP" $v.kafka.consumerGroup)
  (list "FRAUDPIPE_TOPIC_TRANSACTIONS" $v.kafka.topics.transactions)
  (list "FRAUDPIPE_TOPIC_PREDICTIONS" $v.kafka.topics.predictions)
  (list "FRAUDPIPE_TOPIC_ALERTS" $v.kafka.topics.alerts)
  (list "FRAUDPIPE_TOPIC_DLQ" $v.kafka.topics.dlq)
  (list "FRAUDPIPE_TOPIC_DECISIONS" $v.kafka.topics.decisions)
  (list "FRAUDPIPE_API_RECORDER_GROUP" $v.kafka.decisionRecorderGroup)
  (list "FRAUDPIPE_SCHEMA_REGISTRY_URL" $v.schemaRegistry.url)
  (list "FRAUDPIPE_REGISTRY_ADMIN_USER" $v.schemaRegistry.users.admin)
  (list "FRAUDPIPE_REGISTRY_WRITER_USER" $v.schemaRegistry.users.writer)
  (list "FRAUDPIPE_REGISTRY_READER_USER" $v.schemaRegistry.users.reader)
  (list "FRAUDPIPE_MLFLOW_TRACKING_URI" $v.mlflow.trackingUri)
  (list "FRAUDPIPE_MLFLOW_ADMIN_USER" $v.mlflow.users.admin)
  (list "FRAUDPIPE_MLFLOW_TRAINER_USER" $v.mlflow.users.trainer)
  (list "FRAUDPIPE_MLFLOW_PROMOTER_USER" $v.mlflow.users.promoter)
  (list "FRAUDPIPE_MLFLOW_READER_USER" $v.mlflow.users.reader)
  (list "FRAUDPIPE_MODEL_NAME" $v.mlflow.modelName)
  (list "FRAUDPIPE_SERVING_ALIAS" $v.mlflow.servingAlias)
  (list "FRAUDPIPE_PREFECT_API_URL" $v.prefect.apiUrl)
  (list "FRAUDPIPE_PREFECT_API_USER" $v.prefect.apiUser)
  (list "FRAUDPIPE_PREFECT_WORK_POOL" $v.prefect.workPool)
  (list "FRAUDPIPE_AIRFLOW_HOST" $v.airflow.host)
  (list "FRAUDPIPE_AIRFLOW_PORT" (int64 $v.airflow.port))
  (list "FRAUDPIPE_AIRFLOW_ADMIN_USER" $v.airflow.adminUser)
  (list "FRAUDPIPE_PUSHGATEWAY_HOST" $v.pushgateway.host)
  (list "FRAUDPIPE_PUSHGATEWAY_PORT" (int64 $v.pushgateway.port))
  (list "FRAUDPIPE_PUSHGATEWAY_USER" $v.pushgateway.user)
  (list "FRAUDPIPE_STACK_DIR" "/tmp/fraudpipe")
-}}
{{- range $plain }}
- name: {{ index . 0 }}
  value: {{ index . 1 | toString | quote }}
{{- end }}
{{- if $v.kafka.caSecret.name }}
- name: FRAUDPIPE_KAFKA_SSL_CA_LOCATION
  value: {{ printf "%s/%s" (include "fraudpipe.kafkaCaDir" .) $v.kafka.caSecret.key | quote }}
{{- end }}
{{- range $v.extraEnv }}
- name: {{ .name }}
  value: {{ .value | toString | quote }}
{{- end }}
{{- range (include "fraudpipe.requiredSecretEnv" . | fromYamlArray) }}
{{ include "fraudpipe.secretEnvEntry" (dict "root" $ "name" .) }}
{{- end }}
{{- end }}

{{/*
The volumes every fraudpipe pod mounts: a scratch /tmp, and the Kafka CA when set.
*/}}
{{- define "fraudpipe.volumes" -}}
- name: tmp
  emptyDir: {}
{{- if .Values.kafka.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.caSecret.name }}
    items:
      - key: {{ .Values.kafka.caSecret.key }}
        path: {{ .Values.kafka.caSecret.key }}
{{- end }}
{{- end }}

{{- define "fraudpipe.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.kafka.caSecret.name }}
- name: kafka-ca
  mountPath: {{ include "fraudpipe.kafkaCaDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
Process environment that keeps writes off the read-only root filesystem.
*/}}
{{- define "fraudpipe.runtimeEnv" -}}
- name: HOME
  value: /tmp/home
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
- name: PYTHONUNBUFFERED
  value: "1"
- name: PREFECT_HOME
  value: /tmp/prefect
{{- end }}

{{/*
Refuse values that would deploy something broken.
*/}}
{{- define "fraudpipe.validate" -}}
{{- $v := .Values -}}
{{- if and $v.scorer.enabled (gt (int $v.scorer.replicas) (int $v.kafka.partitions)) }}
{{- fail (printf "scorer.replicas (%d) is more than kafka.partitions (%d): a consumer-group member beyond the partition count holds no partition and scores nothing" (int $v.scorer.replicas) (int $v.kafka.partitions)) }}
{{- end }}
{{- if and $v.keda.enabled (gt (int $v.keda.maxReplicaCount) (int $v.kafka.partitions)) }}
{{- fail (printf "keda.maxReplicaCount (%d) is more than kafka.partitions (%d): scorers beyond the partition count would sit idle" (int $v.keda.maxReplicaCount) (int $v.kafka.partitions)) }}
{{- end }}
{{- if and $v.keda.enabled (gt (int $v.keda.minReplicaCount) (int $v.keda.maxReplicaCount)) }}
{{- fail (printf "keda.minReplicaCount (%d) is more than keda.maxReplicaCount (%d)" (int $v.keda.minReplicaCount) (int $v.keda.maxReplicaCount)) }}
{{- end }}
{{- $boundMs := ternary $v.kafka.transactionTimeoutMs $v.kafka.deliveryTimeoutMs $v.kafka.exactlyOnce -}}
{{- if le (mul (int $v.scorer.terminationGracePeriodSeconds) 1000) (int $boundMs) }}
{{- fail (printf "scorer.terminationGracePeriodSeconds (%d) must exceed the micro-batch bound (%d ms, kafka.%s): a scorer killed before its micro-batch commits redoes it after the restart" (int $v.scorer.terminationGracePeriodSeconds) (int $boundMs) (ternary "transactionTimeoutMs" "deliveryTimeoutMs" $v.kafka.exactlyOnce)) }}
{{- end }}
{{- if and $v.api.enabled (lt (int $v.api.terminationGracePeriodSeconds) (add (int $v.api.shutdownDelaySeconds) 10)) }}
{{- fail (printf "api.terminationGracePeriodSeconds (%d) must exceed api.shutdownDelaySeconds (%d) by 10 s at least: uvicorn's graceful shutdown (up to 10 s) starts only after the delay, and a kill cuts the requests in flight" (int $v.api.terminationGracePeriodSeconds) (int $v.api.shutdownDelaySeconds)) }}
{{- end }}
{{- range $v.extraEnv }}
{{- if regexMatch "(PASSWORD|SECRET|TOKEN|AUTH_STRING|KEYS)$" .name }}
{{- fail (printf "extraEnv %s looks like a password: put it in the Secret, where containers read it through secretKeyRef" .name) }}
{{- end }}
{{- end }}
{{- if $v.secrets.create }}
{{- $needed := include "fraudpipe.requiredSecretEnv" . | fromYamlArray }}
{{- if $v.dashboard.enabled }}
{{- $needed = append $needed "FRAUDPIPE_DASHBOARD_PASSWORD" }}
{{- end }}
{{- if $v.api.enabled }}
{{- $needed = append $needed "FRAUDPIPE_API_KEYS" }}
{{- end }}
{{- $missing := list }}
{{- range $needed }}
{{- if not (index $v.secrets.values .) }}
{{- $missing = append $missing . }}
{{- end }}
{{- end }}
{{- if $missing }}
{{- fail (printf "secrets.create is true but secrets.values lacks: %s" (join ", " $missing)) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The Prefect worker's environment: its API and login, nothing of fraudpipe's own (its flow runs
get those from the base job template). PREFECT_API_AUTH_STRING is `user:password`, put together
by Kubernetes from the two variables before it, so the password stays in the Secret.
*/}}
{{- define "fraudpipe.prefectWorkerEnv" -}}
{{ include "fraudpipe.runtimeEnv" . }}
- name: POOL
  value: {{ .Values.prefect.workPool | quote }}
- name: TEMPLATE
  value: /etc/fraudpipe/prefect/base-job-template.json
- name: PREFECT_API_URL
  value: {{ .Values.prefect.apiUrl | quote }}
- name: FRAUDPIPE_PREFECT_API_USER
  value: {{ .Values.prefect.apiUser | quote }}
{{ include "fraudpipe.secretEnvEntry" (dict "root" . "name" "FRAUDPIPE_PREFECT_API_PASSWORD") }}
- name: PREFECT_API_AUTH_STRING
  value: "$(FRAUDPIPE_PREFECT_API_USER):$(FRAUDPIPE_PREFECT_API_PASSWORD)"
{{- end }}
