# kube-sim smoke test: a Deployment with a PVC, a StatefulSet with a volumeClaimTemplate, and a Job
# that writes into the PVC; the file must appear in the volume's host directory and the Job's
# output must be readable with kubectl logs.
# e2e-stage: kube-sim only: it tests kube-sim itself

kapply <<'YAML'
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: nginx, volumeMounts: [{name: data, mountPath: /data}]}
      volumes:
      - {name: data, persistentVolumeClaim: {claimName: data}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: postgres, volumeMounts: [{name: pgdata, mountPath: /var/lib/postgresql}]}]
  volumeClaimTemplates:
  - metadata: {name: pgdata}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
YAML

k wait --for=condition=Available deployment/web --timeout=30s
k wait --for=jsonpath='{.status.readyReplicas}'=1 statefulset/db --timeout=30s
assert_eq Bound "$(jp pvc pgdata-db-0 .status.phase)" "statefulset claim bound"

# The Job must land on the node that already mounts the RWO claim.
node="$(kubectl get pods -l app=web -o 'jsonpath={.items[0].spec.nodeName}')"
kapply <<YAML
apiVersion: batch/v1
kind: Job
metadata: {name: writer}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      nodeName: $node
      containers:
      - name: w
        image: busybox
        command: [sh, -c, 'echo hi > /data/f && echo wrote']
        volumeMounts: [{name: data, mountPath: /data}]
      volumes:
      - {name: data, persistentVolumeClaim: {claimName: data}}
YAML
k wait --for=condition=Complete job/writer --timeout=60s

dir="$(pvc_host_path data)"
assert_eq hi "$(cat "$dir/f")" "file written by the Job is in the PV's host directory"
assert_eq wrote "$(k logs job/writer)" "kubectl logs shows the Job's output"

# Scaling down: readyReplicas drops before the pod disappears.
k scale deployment/web --replicas=0
no_web_pods() { [ -z "$(kubectl get pods -l app=web -o name)" ]; }
wait_for 20 "deployment pods gone" no_web_pods
log "sim-smoke ok"
