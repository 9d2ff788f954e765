/**
 * A second reference: fastify with its JSON body parser and nothing else, answering a fixed
 * AdmissionReview. The gap between it and the bare baseline is what the framework costs; the gap
 * between it and the webhook is what our schema, rules, metrics and logs cost.
 */
import fastify from 'fastify';
import { readFileSync } from 'node:fs';

const [certFile, keyFile] = process.argv.slice(2);
if (!certFile || !keyFile) throw new Error('usage: fastify-floor-server.ts CERT KEY');
const app = fastify({ https: { cert: readFileSync(certFile), key: readFileSync(keyFile) }, keepAliveTimeout: 120_000, bodyLimit: 8 << 20 });
const answer = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: '00000000-0000-4000-8000-000000000000', allowed: true } };
app.post('/validate', async () => answer);
const address = await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`${JSON.stringify({ address })}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
