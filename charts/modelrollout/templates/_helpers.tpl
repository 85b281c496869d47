{{- define "modelrollout.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "modelrollout.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "modelrollout.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelrollout.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "modelrollout.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "modelrollout.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "modelrollout.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "modelrollout.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "modelrollout.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* What the operator does to the objects it rolls out, in one place for the
     ClusterRole (cluster-wide) and the per-namespace Roles (namespaced). Each
     rule was found by running the operator under this account and reading its
     403s; tests/integration/test_helm_chart_install.py runs a canary and a rollback
     with it. */}}
{{- define "modelrollout.operatorRules" -}}
# The ModelDeployments: read and watch them; Kopf patches its finalizer and
# bookkeeping annotations in.
- apiGroups: [modelrollout.io]
  resources: [modeldeployments]
  verbs: [get, list, watch, patch]
# Everything the operator knows lives in status (it never writes spec).
- apiGroups: [modelrollout.io]
  resources: [modeldeployments/status]
  verbs: [patch]
# Owner references with blockOwnerDeletion need this where the
# OwnerReferencesPermissionEnforcement admission plugin is on (e.g. OpenShift).
- apiGroups: [modelrollout.io]
  resources: [modeldeployments/finalizers]
  verbs: [update]
# One Deployment per revision: made, watched (it wakes the rollout), scaled, deleted.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [list, watch, create, delete]
- apiGroups: [apps]
  resources: [deployments/scale]
  verbs: [patch]
# The pods of a revision that lacks available pods: what they report (image pull,
# crash, probe, scheduling) names the cause when its progress deadline passes.
# List only: no watch, no get, no logs.
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
# The <name>, <name>-canary and <name>-preview Services; routing patches their selectors.
- apiGroups: [""]
  resources: [services]
  verbs: [list, create, patch]
# Shadow steps: the <name>-shadow ConfigMap the model servers mount, telling the
# stable revision's servers what share to copy to the canary, and where.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, create, patch]
# spec.retraining: one Job per run, made, read back (how it ended), and deleted
# beyond retraining.historyLimit. List only, no watch: a running Job is looked
# at every few seconds. Its pod's termination message (read with the pods list
# above) holds the outcome.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, create, delete]
# Kubernetes Events for every transition (Kopf posts core/v1 Events).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- if .Values.rbac.autoscaling.enabled }}
# spec.autoscaling: the HPA named after a ModelDeployment, read at each reconcile
# (is it the operator's, made from the spec as it is?), made, its spec patched when
# spec.autoscaling changes, deleted when spec.autoscaling is removed.
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, create, patch, delete]
{{- end }}
{{- if .Values.rbac.gatewayAPI.enabled }}
# strategy.canary.trafficRouting.gatewayAPI: the users' HTTPRoutes, read (with the
# status their gateway writes) and patched by server-side apply, weights and the
# operator's own header rules only. Never created or deleted.
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, patch]
{{- end }}
{{- if .Values.rbac.secrets.enabled }}
# Analysis credentials and notification URLs: get by name only, never list/watch.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
  {{- with .Values.rbac.secrets.resourceNames }}
  resourceNames: {{ toJson . }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "modelrollout.clusterwide" -}}
{{- if .Values.watchNamespaces -}}false{{- else -}}true{{- end -}}
{{- end -}}

{{/* A duration like 30m, 2h, 1d, 90s as seconds, for PromQL comparisons. */}}
{{- define "modelrollout.seconds" -}}
{{- $d := toString . -}}
{{- $units := dict "s" 1 "m" 60 "h" 3600 "d" 86400 -}}
{{- $unit := substr (sub (len $d) 1 | int) (len $d) $d -}}
{{- $n := trimSuffix $unit $d | int -}}
{{- mul $n (required (printf "duration %q needs a unit s, m, h or d" $d) (get $units $unit)) -}}
{{- end -}}
