/**
 * charts/redis-istio-guard: `helm lint` and `helm template` with helm built from its Go module
 * (test/harness/helm), for the default values and each certificate mode with mutation on and off,
 * asserting the fields that make the installation safe.
 */
import t from 'tap';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec } from '../harness/controlplane.ts';
import { chartDir, ensureHelm, helmModuleDir, helmTemplate, NAMESPACE, RELEASE, type Manifest, type Rendered } from '../harness/helm/helm.ts';

// A cold build of helm takes minutes; later runs reuse the cached binary.
t.setTimeout(30 * 60_000);

const built = Date.now();
const helm = await ensureHelm();
t.teardown(() => helm.cleanup());
t.comment(`helm ready in ${((Date.now() - built) / 1000).toFixed(1)} s`);

const FULLNAME = 'rig-redis-istio-guard';
const SVC_HOST = `${FULLNAME}.${NAMESPACE}.svc`;
const pem = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');

// A CA for existingSecret mode: any PEM certificate will do for rendering.
const existingCa = Buffer.from((await generate([{ name: 'commonName', value: 'test-ca' }], { keySize: 2048 })).cert).toString('base64');

// Only the assertions the helpers use, so the root test and subtests both fit.
type Test = Pick<typeof t, 'equal' | 'same' | 'match' | 'ok' | 'notOk'>;
type Mode = 'selfSigned' | 'certManager' | 'existingSecret';
const modeValues: Record<Mode, Record<string, string | boolean>> = {
  selfSigned: {},
  certManager: { 'certificates.mode': 'certManager' },
  existingSecret: {
    'certificates.mode': 'existingSecret',
    'certificates.secretName': 'my-webhook-tls',
    'certificates.existingSecret.caBundle': existingCa,
  },
};

t.test('helm is built from the version pinned in test/harness/helm/go.mod', async (t) => {
  const pin = /^\s*helm\.sh\/helm\/v4 (v\S+)/m.exec(readFileSync(join(helmModuleDir, 'go.mod'), 'utf8'))?.[1];
  t.ok(pin, 'go.mod pins helm.sh/helm/v4');
  const info = await exec('go', ['version', '-m', helm.bin], { env: process.env });
  t.equal(info.code, 0, info.stderr);
  t.match(info.stdout, new RegExp(`\\bmod\\s+helm\\.sh/helm/v4\\s+${pin}\\s`), `binary built from helm ${pin}`);
  const res = await helm.run(['version', '--template', '{{.Version}}']);
  t.equal(res.code, 0, res.stderr);
  t.match(res.stdout, /^v4\./);
});

t.test('helm lint --strict passes for the defaults and every mode, mutation on and off', async (t) => {
  for (const mode of Object.keys(modeValues) as Mode[]) {
    for (const mutate of [false, true]) {
      const sets = Object.entries({ ...modeValues[mode], 'mutation.enabled': mutate }).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
      const res = await helm.run(['lint', '--strict', chartDir, '--namespace', NAMESPACE, ...sets]);
      t.equal(res.code, 0, `lint ${mode} mutate=${mutate}`);
      if (res.code !== 0) t.comment(res.stdout + res.stderr);
      t.match(res.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  }
});

function assertWebhook(t: Test, wh: any, name: string, path: string, failurePolicy = 'Fail') {
  t.equal(wh.name, name);
  t.same(wh.clientConfig.service, { name: FULLNAME, namespace: NAMESPACE, path, port: 443 });
  t.equal(wh.failurePolicy, failurePolicy, 'failurePolicy');
  t.equal(wh.sideEffects, 'None');
  t.same(wh.admissionReviewVersions, ['v1']);
  t.equal(wh.matchPolicy, 'Equivalent');
  t.equal(wh.timeoutSeconds, 5);
  t.same(wh.namespaceSelector, {
    matchExpressions: [
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', NAMESPACE] },
      { key: 'redis-istio-guard.io/ignore', operator: 'NotIn', values: ['true'] },
    ],
  });
}

const REC_RULE = {
  apiGroups: ['app.redislabs.com'],
  apiVersions: ['v1', 'v1alpha1'],
  resources: ['redisenterpriseclusters'],
  operations: ['CREATE', 'UPDATE'],
  scope: 'Namespaced',
};
const ISTIO_RULE = {
  apiGroups: ['networking.istio.io'],
  apiVersions: ['v1', 'v1beta1', 'v1alpha3'],
  resources: ['gateways', 'virtualservices'],
  operations: ['CREATE', 'UPDATE'],
  scope: 'Namespaced',
};

function assertDeployment(t: Test, r: Rendered, mutate: boolean, secretName: string) {
  const dep = r.one('Deployment');
  t.equal(dep.metadata.namespace, NAMESPACE);
  t.equal(dep.spec.replicas, 2, '2 replicas');
  t.same(dep.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
  const pod = dep.spec.template.spec;
  t.equal(pod.serviceAccountName, FULLNAME);
  t.match(pod.securityContext, { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
  t.match(pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm, {
    topologyKey: 'kubernetes.io/hostname',
  });
  t.ok(
    pod.topologySpreadConstraints.some(
      (c: any) => c.topologyKey === 'topology.kubernetes.io/zone' && c.whenUnsatisfiable === 'ScheduleAnyway',
    ),
    'zone topology spread',
  );
  t.equal(pod.containers.length, 1);
  const c = pod.containers[0];
  t.same(c.args, ['serve']);
  t.same(c.ports, [{ name: 'https', containerPort: 8443, protocol: 'TCP' }]);
  t.match(c.readinessProbe, { httpGet: { path: '/readyz', port: 'https', scheme: 'HTTPS' } });
  t.match(c.livenessProbe, { httpGet: { path: '/healthz', port: 'https', scheme: 'HTTPS' } });
  t.same(c.securityContext.capabilities, { drop: ['ALL'] });
  t.equal(c.securityContext.readOnlyRootFilesystem, true);
  t.equal(c.securityContext.allowPrivilegeEscalation, false);
  t.equal(c.securityContext.runAsNonRoot, true);
  t.ok(c.resources.requests.cpu && c.resources.requests.memory, 'cpu and memory requests');
  t.notOk(c.resources.limits?.cpu, 'no CPU limit');
  t.ok(c.resources.limits?.memory, 'memory limit');
  const env = Object.fromEntries((c.env as any[]).filter((e) => 'value' in e).map((e) => [e.name, e.value]));
  t.match(env, {
    REDIS_ISTIO_GUARD_PORT: '8443',
    REDIS_ISTIO_GUARD_HOST: '0.0.0.0',
    REDIS_ISTIO_GUARD_TLS_CERT_FILE: '/etc/redis-istio-guard/tls/tls.crt',
    REDIS_ISTIO_GUARD_TLS_KEY_FILE: '/etc/redis-istio-guard/tls/tls.key',
    REDIS_ISTIO_GUARD_MUTATE: String(mutate),
    REDIS_ISTIO_GUARD_SHUTDOWN_DELAY: '5',
  });
  // Drain: preStop sleep + the server's own shutdown delay must fit in the grace period.
  const preStop = c.lifecycle.preStop.sleep.seconds as number;
  t.ok(preStop > 0, 'preStop sleep');
  t.ok(pod.terminationGracePeriodSeconds > preStop + Number(env.REDIS_ISTIO_GUARD_SHUTDOWN_DELAY), 'grace > preStop + shutdown delay');
  const tlsVolume = (pod.volumes as any[]).find((v) => v.name === 'tls');
  t.equal(tlsVolume.secret.secretName, secretName);
  t.equal(tlsVolume.secret.defaultMode, 0o440, 'key readable by owner and fsGroup only');
  t.equal(pod.securityContext.fsGroup, 1000);
  t.ok((c.volumeMounts as any[]).some((m) => m.name === 'tls' && m.readOnly === true && m.mountPath === '/etc/redis-istio-guard/tls'));
}

function assertClusterRole(t: Test, r: Rendered) {
  const role = r.one('ClusterRole');
  const can = (group: string, resource: string, verb: string) =>
    (role.rules as any[]).some((rule) => rule.apiGroups.includes(group) && rule.resources.includes(resource) && rule.verbs.includes(verb));
  for (const [group, resource] of [
    ['', 'services'],
    ['', 'namespaces'],
    ['networking.istio.io', 'gateways'],
    ['app.redislabs.com', 'redisenterpriseclusters'],
    ['app.redislabs.com', 'redisenterprisedatabases'],
  ] as const) {
    for (const verb of ['get', 'list', 'watch']) t.ok(can(group, resource, verb), `${verb} ${group}/${resource}`);
  }
  for (const rule of role.rules as any[]) {
    t.notOk(rule.verbs.includes('*') || rule.resources.includes('*'), 'no wildcards');
    t.notOk(rule.resources.includes('secrets'), 'no cluster-wide secret access');
  }
  const binding = r.one('ClusterRoleBinding');
  t.same(binding.subjects, [{ kind: 'ServiceAccount', name: FULLNAME, namespace: NAMESPACE }]);
}

for (const mode of Object.keys(modeValues) as Mode[]) {
  for (const mutate of [false, true]) {
    t.test(`helm template: ${mode}, mutation ${mutate ? 'on' : 'off'}`, async (t) => {
      const r = await helmTemplate(helm, { ...modeValues[mode], 'mutation.enabled': mutate });
      const secretName = mode === 'existingSecret' ? 'my-webhook-tls' : `${FULLNAME}-tls`;

      // Every object is labelled and namespaced where it should be.
      for (const o of r.objects) {
        t.equal(o.metadata.labels?.['app.kubernetes.io/instance'], RELEASE, `${o.kind} labelled`);
        const clusterScoped = ['ClusterRole', 'ClusterRoleBinding', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration'];
        if (clusterScoped.includes(o.kind)) t.notOk(o.metadata.namespace, `${o.kind} has no namespace`);
        else t.equal(o.metadata.namespace, NAMESPACE, `${o.kind} in the release namespace`);
      }

      assertDeployment(t, r, mutate, secretName);
      assertClusterRole(t, r);

      const svc = r.one('Service');
      t.equal(svc.metadata.name, FULLNAME);
      t.same(svc.spec.ports, [{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }]);
      t.same(svc.spec.selector, r.one('Deployment').spec.selector.matchLabels);

      const pdb = r.one('PodDisruptionBudget');
      t.equal(pdb.spec.minAvailable, 1);
      t.same(pdb.spec.selector.matchLabels, svc.spec.selector);
      t.equal(r.one('ServiceAccount').metadata.name, FULLNAME);

      const vwc = r.one('ValidatingWebhookConfiguration');
      t.equal(vwc.webhooks.length, 1);
      const vwh = vwc.webhooks[0];
      assertWebhook(t, vwh, 'validate.redis-istio-guard.io', '/validate');
      t.same(vwh.rules, [REC_RULE, ISTIO_RULE]);

      const mwcs = r.all('MutatingWebhookConfiguration');
      if (!mutate) t.equal(mwcs.length, 0, 'no MutatingWebhookConfiguration without mutation');
      else {
        t.equal(mwcs.length, 1);
        const mwh = mwcs[0]!.webhooks[0];
        assertWebhook(t, mwh, 'mutate.redis-istio-guard.io', '/mutate');
        t.same(mwh.rules, [REC_RULE]);
        t.equal(mwh.reinvocationPolicy, 'Never');
      }
      const configs: Manifest[] = [vwc, ...mwcs];

      if (mode === 'selfSigned') {
        const secret = r.one('Secret');
        t.equal(secret.metadata.name, secretName);
        t.equal(secret.type, 'kubernetes.io/tls');
        const ca = new X509Certificate(pem(secret.data['ca.crt']));
        const leaf = new X509Certificate(pem(secret.data['tls.crt']));
        t.ok(ca.ca, 'ca.crt is a CA');
        t.ok(leaf.verify(ca.publicKey), 'serving cert signed by the CA');
        t.ok(leaf.checkHost(SVC_HOST), `serving cert valid for ${SVC_HOST}`);
        t.ok(leaf.checkPrivateKey(createPrivateKey(pem(secret.data['tls.key']))), 'key matches');
        // The layout src/certs/manager.ts keeps: the signing CA and its key, ca.crt the bundle.
        t.same(Object.keys(secret.data).sort(), ['ca.crt', 'signer.crt', 'signer.key', 'tls.crt', 'tls.key']);
        t.equal(secret.data['signer.crt'], secret.data['ca.crt']);
        t.ok(new X509Certificate(pem(secret.data['signer.crt'])).checkPrivateKey(createPrivateKey(pem(secret.data['signer.key']))));
        const env = Object.fromEntries((r.one('Deployment').spec.template.spec.containers[0].env as any[]).map((e) => [e.name, e.value]));
        t.match(env, {
          REDIS_ISTIO_GUARD_CERT_SECRET: secretName,
          REDIS_ISTIO_GUARD_VALIDATING_WEBHOOK_CONFIGURATION: FULLNAME,
        });
        t.ok((env.REDIS_ISTIO_GUARD_CERT_NAMES as string).split(',').includes(SVC_HOST));
        t.equal(env.REDIS_ISTIO_GUARD_MUTATING_WEBHOOK_CONFIGURATION, mutate ? FULLNAME : undefined);
        for (const cfg of configs) {
          t.equal(cfg.webhooks[0].clientConfig.caBundle, secret.data['ca.crt'], `${cfg.kind} caBundle is the CA`);
          t.notOk(cfg.metadata.annotations?.['cert-manager.io/inject-ca-from']);
        }
        // Least privilege for renewal: its own Secret and its own webhook configurations only.
        const role = r.one('Role');
        t.same(role.rules, [
          { apiGroups: [''], resources: ['secrets'], resourceNames: [secretName], verbs: ['get', 'list', 'watch', 'update', 'patch'] },
          { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
        ]);
        const webhookRules = (r.one('ClusterRole').rules as any[]).filter((x) => x.apiGroups.includes('admissionregistration.k8s.io'));
        t.same(
          webhookRules.map((x) => [x.resources[0], x.resourceNames]),
          [['validatingwebhookconfigurations', [FULLNAME]], ...(mutate ? [['mutatingwebhookconfigurations', [FULLNAME]]] : [])],
        );
        t.equal(r.one('RoleBinding').roleRef.name, role.metadata.name);
      } else {
        t.equal(r.all('Secret').length, 0, 'no chart-made Secret');
        t.equal(r.all('Role').length, 0, 'no Secret access');
      }

      if (mode === 'certManager') {
        const cert = r.one('Certificate');
        t.equal(cert.apiVersion, 'cert-manager.io/v1');
        t.equal(cert.spec.secretName, secretName);
        t.ok((cert.spec.dnsNames as string[]).includes(SVC_HOST), `Certificate covers ${SVC_HOST}`);
        const issuer = r.one('Issuer');
        t.same(issuer.spec, { selfSigned: {} });
        t.same(cert.spec.issuerRef, { name: issuer.metadata.name, kind: 'Issuer', group: 'cert-manager.io' });
        for (const cfg of configs) {
          t.equal(cfg.metadata.annotations['cert-manager.io/inject-ca-from'], `${NAMESPACE}/${cert.metadata.name}`);
          t.notOk(cfg.webhooks[0].clientConfig.caBundle, 'caBundle left to the cainjector');
        }
      } else {
        t.equal(r.all('Certificate').length + r.all('Issuer').length, 0, 'no cert-manager objects');
      }

      if (mode === 'existingSecret') {
        for (const cfg of configs) t.equal(cfg.webhooks[0].clientConfig.caBundle, existingCa);
      }
    });
  }
}

t.test('values override the safe defaults only where asked', async (t) => {
  const r = await helmTemplate(helm, {
    'webhook.failurePolicy': 'Ignore',
    'webhook.timeoutSeconds': 10,
    'webhook.excludeNamespaces[0]': 'istio-system',
    'replicaCount': 3,
    'server.rules.rec-db-suffix': 'warn',
    'server.logLevel': 'debug',
    'certificates.certManager.issuerRef.name': 'ignored-in-selfSigned',
  });
  const wh = r.one('ValidatingWebhookConfiguration').webhooks[0];
  t.equal(wh.failurePolicy, 'Ignore');
  t.equal(wh.timeoutSeconds, 10);
  t.same(wh.namespaceSelector.matchExpressions[0].values, ['kube-system', NAMESPACE, 'istio-system']);
  const dep = r.one('Deployment');
  t.equal(dep.spec.replicas, 3);
  const env = Object.fromEntries((dep.spec.template.spec.containers[0].env as any[]).map((e) => [e.name, e.value]));
  t.equal(env.REDIS_ISTIO_GUARD_RULES, 'rec-db-suffix=warn');
  t.equal(env.REDIS_ISTIO_GUARD_LOG_LEVEL, 'debug');

  const cm = await helmTemplate(helm, {
    'certificates.mode': 'certManager',
    'certificates.certManager.issuerRef.name': 'corp-ca',
    'certificates.certManager.issuerRef.kind': 'ClusterIssuer',
  });
  t.equal(cm.all('Issuer').length, 0, 'no Issuer when one is given');
  t.same(cm.one('Certificate').spec.issuerRef, { name: 'corp-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
});

t.test('helm template refuses unsafe or incomplete values', async (t) => {
  // values.schema.json catches types, enums, ranges and typos; the templates catch combinations.
  const cases: [string, Record<string, string | number>, RegExp][] = [
    ['unknown mode', { 'certificates.mode': 'none' }, /at '\/certificates\/mode': value must be one of 'selfSigned', 'certManager', 'existingSecret'/],
    ['existingSecret without a Secret', { 'certificates.mode': 'existingSecret' }, /certificates.secretName is required/],
    [
      'existingSecret without a CA bundle',
      { 'certificates.mode': 'existingSecret', 'certificates.secretName': 'x' },
      /certificates.existingSecret.caBundle .* is required/,
    ],
    ['bad failurePolicy', { 'webhook.failurePolicy': 'Maybe' }, /at '\/webhook\/failurePolicy': value must be one of 'Fail', 'Ignore'/],
    ['timeout over 30 s', { 'webhook.timeoutSeconds': 31 }, /at '\/webhook\/timeoutSeconds': maximum: got 31, want 30/],
    ['a typo', { 'webhook.failurPolicy': 'Ignore' }, /additional properties 'failurPolicy' not allowed/],
    ['a bad rule mode', { 'server.rules.rec-db-suffix': 'maybe' }, /at '\/server\/rules\/rec-db-suffix': value must be one of 'deny', 'warn', 'off'/],
    ['no replicas', { replicaCount: 0 }, /at '\/replicaCount': minimum: got 0, want 1/],
    ['grace too short', { terminationGracePeriodSeconds: 10 }, /terminationGracePeriodSeconds \(10\) must be longer than/],
  ];
  for (const [name, values, message] of cases) {
    await t.rejects(helmTemplate(helm, values), message, name);
  }
});

t.test('NOTES.txt says how to check and how to switch the webhook off', async (t) => {
  const res = await helm.run(['install', RELEASE, chartDir, '--namespace', NAMESPACE, '--dry-run=client', '--set', 'mutation.enabled=true']);
  t.equal(res.code, 0, res.stderr);
  const notes = res.stdout.slice(res.stdout.indexOf('NOTES:'));
  t.match(notes, `kubectl -n ${NAMESPACE} rollout status deployment/${FULLNAME}`);
  t.match(notes, `kubectl delete validatingwebhookconfiguration ${FULLNAME}`);
  t.match(notes, `kubectl delete mutatingwebhookconfiguration ${FULLNAME}`);
  t.match(notes, '"value":"Ignore"');
  t.match(notes, 'redis-istio-guard.io/ignore=true');
});
