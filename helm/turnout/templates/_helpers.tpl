{{/*
Named templates. Those marked "public" are for your own pod specs (README: "Add the sidecar to
your Deployment"); they read Turnout's values from .Values.turnout when called from a parent chart
that has this chart as a dependency named `turnout`, and from .Values inside this chart.
*/}}

{{/* Turnout's values, as YAML, wherever the template is called from. */}}
{{- define "turnout.valuesYaml" -}}
{{- if hasKey .Values "turnout" -}}
{{- toYaml .Values.turnout -}}
{{- else -}}
{{- toYaml .Values -}}
{{- end -}}
{{- end -}}

{{- define "turnout.fullname" -}}
{{- $v := include "turnout.valuesYaml" . | fromYaml -}}
{{- if $v.fullnameOverride -}}
{{- $v.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains "turnout" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-turnout" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "turnout.labels" -}}
app.kubernetes.io/name: turnout
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "turnout.configMapName" -}}
{{- $v := include "turnout.valuesYaml" . | fromYaml -}}
{{- $v.existingConfigMap | default (include "turnout.fullname" .) -}}
{{- end -}}

{{/* public: labels for a pod that carries the sidecar (the metrics Service selects them). */}}
{{- define "turnout.podLabels" -}}
turnout.dev/sidecar: {{ include "turnout.fullname" . }}
{{- end -}}

{{/* public: annotations for a pod that carries the sidecar (Prometheus scraping). */}}
{{- define "turnout.podAnnotations" -}}
{{- $v := include "turnout.valuesYaml" . | fromYaml -}}
{{- if and $v.metrics.enabled $v.metrics.podAnnotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ $v.metrics.port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end -}}

{{/*
public: the pod's terminationGracePeriodSeconds. Kubelet stops the app containers first and
Turnout after them, all within this one period, so it must leave Turnout its drain time.
*/}}
{{- define "turnout.terminationGracePeriodSeconds" -}}
{{- $v := include "turnout.valuesYaml" . | fromYaml -}}
{{- $grace := int $v.sidecar.shutdownGraceSeconds -}}
{{- $period := int $v.terminationGracePeriodSeconds -}}
{{- if le $period (add $grace 5) -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be at least sidecar.shutdownGraceSeconds (%d) + 5 plus your app's own shutdown time: kubelet stops the app first and Turnout after it, within that one period, and kills whatever still runs at its end" $period $grace) -}}
{{- end -}}
{{- $period -}}
{{- end -}}

{{/* public: the native sidecar, one entry of the pod's initContainers. */}}
{{- define "turnout.sidecar" -}}
{{- $v := include "turnout.valuesYaml" . | fromYaml -}}
{{- $s := $v.sidecar -}}
{{- $configKey := ternary $v.existingConfigMapKey "turnout.yaml" (ne $v.existingConfigMap "") -}}
- name: {{ $s.name }}
  image: {{ printf "%s:%s" $v.image.repository (required "image.tag is required" $v.image.tag) | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  # A native sidecar: started before the app containers (once its startup probe passes) and
  # stopped after them.
  restartPolicy: Always
  args:
    - --log-level={{ $s.logLevel }}   # the command's own option: before the subcommand
    - serve
    - --config=/etc/turnout/{{ $configKey }}
    - --host=127.0.0.1
    - --port={{ $s.grpcPort }}
    - --probe-host=0.0.0.0
    - --probe-port={{ $s.probePort }}
    {{- if $v.metrics.enabled }}
    # Prometheus scrapes the pod IP: the metrics listener leaves loopback, deliberately (it serves
    # read-only aggregates, no prompts or keys); the gRPC API above stays on 127.0.0.1.
    - --metrics-host=0.0.0.0
    - --allow-remote-metrics
    - --metrics-port={{ $v.metrics.port }}
    {{- end }}
    {{- if $s.simulator.enabled }}
    - --simulator={{ $s.simulator.config }}
    - --simulator-port={{ $s.simulator.port }}
    {{- end }}
    {{- range $s.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  ports:
    - name: turnout-probe
      containerPort: {{ $s.probePort }}
      protocol: TCP
    {{- if $v.metrics.enabled }}
    - name: turnout-metrics
      containerPort: {{ $v.metrics.port }}
      protocol: TCP
    {{- end }}
  env:
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: POD_NAMESPACE
      valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
    - name: NODE_NAME
      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
    - name: OTEL_SERVICE_NAME
      value: {{ $v.telemetry.serviceName | quote }}
    - name: OTEL_RESOURCE_ATTRIBUTES
      value: "k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE),k8s.node.name=$(NODE_NAME),k8s.container.name={{ $s.name }}"
    - name: OTEL_TRACES_SAMPLER
      value: parentbased_traceidratio
    - name: OTEL_TRACES_SAMPLER_ARG
      value: {{ $v.telemetry.traceSampleRatio | toString | quote }}
    {{- with $v.telemetry.otlpEndpoint }}
    - name: OTEL_EXPORTER_OTLP_ENDPOINT
      value: {{ . | quote }}
    - name: OTEL_EXPORTER_OTLP_PROTOCOL
      value: {{ $v.telemetry.otlpProtocol | quote }}
    {{- end }}
    {{- range $v.providerKeys }}
    - name: {{ .env }}
      valueFrom:
        secretKeyRef:
          name: {{ .secretName }}
          key: {{ .key }}
          {{- if hasKey . "optional" }}
          optional: {{ .optional }}
          {{- end }}
    {{- end }}
    {{- with $s.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $v.existingSecret }}
  envFrom:
    - secretRef:
        name: {{ . }}
  {{- end }}
  startupProbe:
    httpGet: {path: /readyz, port: turnout-probe}
    {{- toYaml $s.startupProbe | nindent 4 }}
  readinessProbe:
    httpGet: {path: /readyz, port: turnout-probe}
    {{- toYaml $s.readinessProbe | nindent 4 }}
  livenessProbe:
    httpGet: {path: /livez, port: turnout-probe}
    {{- toYaml $s.livenessProbe | nindent 4 }}
  resources:
    {{- toYaml $s.resources | nindent 4 }}
  securityContext:
    {{- toYaml $s.securityContext | nindent 4 }}
  volumeMounts:
    # A directory mount (not subPath): kubelet swaps it atomically on a ConfigMap change, and
    # Turnout's file watcher reloads the new config.
    - name: turnout-config
      mountPath: /etc/turnout
      readOnly: true
    - name: turnout-tmp
      mountPath: /tmp
    {{- with $s.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* public: the volumes the sidecar mounts, entries of the pod's volumes. */}}
{{- define "turnout.volumes" -}}
- name: turnout-config
  configMap:
    name: {{ include "turnout.configMapName" . }}
- name: turnout-tmp
  emptyDir:
    medium: Memory
    sizeLimit: 16Mi
{{- end -}}
