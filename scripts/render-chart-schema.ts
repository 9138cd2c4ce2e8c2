// Writes charts/flipt-sidecar-injector/values.schema.json. Its `config` part is the injector's own
// schema (INJECTOR_CONFIG_SCHEMA in src/core/config-schema.ts), so chart values and the config file
// `flipt-injector serve --config` reads are validated by the same rules; the chart's own settings
// (replicas, TLS, webhook, pod placement) are described here. test/deploy/chart.test.ts fails when
// the committed file differs from what this prints.
//
//   node_modules/.bin/node scripts/render-chart-schema.ts          # rewrite the file
//   node_modules/.bin/node scripts/render-chart-schema.ts --check  # exit 1 when it is stale
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { INJECTOR_CONFIG_SCHEMA } from '../src/core/config-schema.ts';

export const CHART_DIR = resolve(import.meta.dirname, '..', 'charts', 'flipt-sidecar-injector');
export const SCHEMA_FILE = join(CHART_DIR, 'values.schema.json');

/** A JSON copy of a TypeBox schema without TypeBox's symbol keys. */
export function standardSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(standardSchema);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  // Object.keys skips TypeBox's symbol-keyed metadata.
  for (const key of Object.keys(schema)) {
    out[key] = standardSchema((schema as Record<string, unknown>)[key]);
  }
  return out;
}

const quantity = { type: ['string', 'number'] };
const resources = {
  type: 'object',
  additionalProperties: false,
  properties: {
    requests: { type: 'object', properties: { cpu: quantity, memory: quantity } },
    limits: { type: 'object', properties: { cpu: quantity, memory: quantity } },
  },
};
const stringMap = { type: 'object', additionalProperties: { type: 'string' } };

export function chartValuesSchema(): Record<string, unknown> {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'flipt-sidecar-injector chart values',
    type: 'object',
    additionalProperties: false,
    properties: {
      config: {
        ...(standardSchema(INJECTOR_CONFIG_SCHEMA) as Record<string, unknown>),
        description:
          "the injector's configuration file (generated from INJECTOR_CONFIG_SCHEMA, src/core/config-schema.ts); injector.namespace is replaced by the release namespace",
      },
      replicaCount: {
        type: 'integer',
        minimum: 1,
        description: 'injector replicas; 2 or more, since with failurePolicy Fail labelled pods wait for it',
      },
      image: {
        type: 'object',
        additionalProperties: false,
        required: ['repository'],
        properties: {
          repository: { type: 'string', minLength: 1 },
          tag: { type: 'string', not: { const: 'latest' }, description: 'default: the chart appVersion' },
          digest: { type: 'string', pattern: '^(sha256:[a-f0-9]{64})?$' },
          pullPolicy: { enum: ['Always', 'IfNotPresent', 'Never'] },
        },
      },
      imagePullSecrets: { type: 'array', items: { type: 'object' } },
      containerPort: { type: 'integer', minimum: 1024, maximum: 65535 },
      nodeOptions: { type: 'string' },
      tls: {
        type: 'object',
        additionalProperties: false,
        properties: {
          mode: { enum: ['generate', 'secret', 'cert-manager', 'auto'] },
          secretName: {
            type: 'string',
            pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)?$',
          },
          validityDays: { type: 'integer', minimum: 1, maximum: 36500 },
          auto: {
            type: 'object',
            additionalProperties: false,
            description: 'self-managed TLS (tls.mode auto): `flipt-injector serve --tls-auto`',
            properties: {
              lifetime: { type: 'string', pattern: '^(\\d+(\\.\\d+)?(ms|s|m|h))+$' },
              renewFraction: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
              checkInterval: { type: 'string', pattern: '^(\\d+(\\.\\d+)?(ms|s|m|h))+$' },
              memoryLimit: {
                type: 'string',
                description: 'memory limit in auto mode, replacing resources.limits.memory ("" keeps it)',
              },
            },
          },
          certManager: {
            type: 'object',
            additionalProperties: false,
            properties: {
              issuerRef: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  name: { type: 'string' },
                  kind: { enum: ['Issuer', 'ClusterIssuer'] },
                  group: { type: 'string' },
                },
              },
              duration: { type: 'string' },
              renewBefore: { type: 'string' },
            },
          },
        },
      },
      webhook: {
        type: 'object',
        additionalProperties: false,
        properties: {
          caBundle: { type: 'string', pattern: '^[A-Za-z0-9+/=]*$', description: 'base64 PEM (secret mode)' },
          failurePolicy: { enum: ['Fail', 'Ignore'] },
          timeoutSeconds: { type: 'integer', minimum: 1, maximum: 30 },
          url: {
            type: 'string',
            pattern: '^(https://[^/?#]+/?)?$',
            description: 'https://HOST:PORT of an injector outside the cluster; empty: the Service',
          },
        },
      },
      service: {
        type: 'object',
        additionalProperties: false,
        properties: { port: { type: 'integer', minimum: 1, maximum: 65535 } },
      },
      serviceAccount: {
        type: 'object',
        additionalProperties: false,
        properties: { name: { type: 'string' }, annotations: stringMap },
      },
      podDisruptionBudget: {
        type: 'object',
        additionalProperties: false,
        properties: {
          enabled: { type: 'boolean' },
          minAvailable: { type: ['integer', 'string'] },
        },
      },
      topologySpreadConstraints: { type: 'array', items: { type: 'object' } },
      resources,
      podAnnotations: stringMap,
      podLabels: stringMap,
      nodeSelector: stringMap,
      tolerations: { type: 'array', items: { type: 'object' } },
      affinity: { type: 'object' },
      priorityClassName: { type: 'string' },
      bucketCache: {
        type: 'object',
        additionalProperties: false,
        description: 'the bucket cache (docs/bucket-cache.md), for config.storage.mode "cache"',
        properties: {
          enabled: { type: 'boolean' },
          serviceName: { type: 'string', pattern: '^[a-z]([-a-z0-9]{0,45}[a-z0-9])?$' },
          replicaCount: { type: 'integer', minimum: 2 },
          interval: { type: 'string', pattern: '^(\\d+(\\.\\d+)?(ms|s|m|h))+$' },
          credentialsSecret: { type: 'string' },
          refreshTokenSecret: { type: 'string' },
          podDisruptionBudget: {
            type: 'object',
            additionalProperties: false,
            properties: { minAvailable: { type: ['integer', 'string'] } },
          },
          networkPolicy: {
            type: 'object',
            additionalProperties: false,
            properties: {
              enabled: { type: 'boolean' },
              from: { type: 'array', items: { type: 'object' } },
              extraFrom: { type: 'array', items: { type: 'object' } },
            },
          },
          resources,
        },
      },
    },
  };
}

export function renderChartSchema(): string {
  return `${JSON.stringify(chartValuesSchema(), null, 2)}\n`;
}

if (import.meta.main) {
  const text = renderChartSchema();
  if (process.argv.includes('--check')) {
    if (readFileSync(SCHEMA_FILE, 'utf8') !== text) {
      console.error(`${SCHEMA_FILE} is stale: run node_modules/.bin/node scripts/render-chart-schema.ts`);
      process.exit(1);
    }
  } else {
    writeFileSync(SCHEMA_FILE, text);
    console.log(`wrote ${SCHEMA_FILE}`);
  }
}
