// The webhook's cached path (src/core/sidecar-cache.ts, admissionAnswer) against the uncached one
// (injectPod building everything afresh, JSON.stringify of admissionResponse): for every golden
// case, every pod, its injected form (reinvocation) and its form in the other sidecar mode, the
// answers must be the same bytes, on a cache miss and on a hit.
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config-file.ts';
import type { InjectorConfig } from '../../src/core/config.ts';
import { injectPod, type InjectionContext } from '../../src/core/inject.ts';
import { podDisplayName, type Pod } from '../../src/core/k8s.ts';
import { SidecarCache } from '../../src/core/sidecar-cache.ts';
import { findPodTemplates } from '../../src/manifest.ts';
import { admissionAnswer, admissionResponse } from '../../src/webhook/admission.ts';
import { goldenCases } from '../support/golden.ts';
import { readFileSync } from 'node:fs';

function podsOf(text: string): Pod[] {
  return parseAllDocuments(text)
    .flatMap((doc) => findPodTemplates(doc.toJS()))
    .map((found) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      ...structuredClone(found.template),
      metadata: { ...found.template.metadata, namespace: found.namespace ?? 'default' },
    }));
}

/** The same pod with its sidecar in the other list (what a mode switch between runs looks like). */
function otherMode(pod: Pod): Pod | undefined {
  const spec = pod.spec;
  if (!spec) return undefined;
  const init = spec.initContainers?.find((c) => c.name === 'flipt-sidecar');
  const classic = spec.containers.find((c) => c.name === 'flipt-sidecar');
  const sidecar = init ?? classic;
  if (!sidecar) return undefined;
  const copy = structuredClone(pod);
  const s = copy.spec as NonNullable<Pod['spec']>;
  if (init) {
    s.initContainers = s.initContainers?.filter((c) => c.name !== 'flipt-sidecar');
    s.containers = [...s.containers, structuredClone(sidecar)];
  } else {
    s.containers = s.containers.filter((c) => c.name !== 'flipt-sidecar');
    s.initContainers = [structuredClone(sidecar), ...(s.initContainers ?? [])];
  }
  return copy;
}

const configs = new Map<string | undefined, InjectorConfig>();
async function configFor(file: string | undefined): Promise<InjectorConfig> {
  let config = configs.get(file);
  if (!config) {
    config = await loadConfig(file, {});
    configs.set(file, config);
  }
  return config;
}

let compared = 0;
let patches = 0;
for (const goldenCase of goldenCases()) {
  t.test(goldenCase.name, async (t) => {
    const config = await configFor(goldenCase.configFile);
    const cache = new SidecarCache(config);
    const inputs = podsOf(goldenCase.input);
    const outputs =
      goldenCase.kind === 'injected' ? podsOf(readFileSync(goldenCase.expectedFile, 'utf8')) : [];
    const pods = [...inputs, ...outputs, ...outputs.map(otherMode).filter((p) => p !== undefined)];
    t.ok(pods.length > 0, 'the case has pods');
    for (const [i, pod] of pods.entries()) {
      const namespace = pod.metadata?.namespace;
      const context: InjectionContext = {
        config,
        namespace,
        namespaceEnabled: goldenCase.namespaceEnabled,
        kind: 'Pod',
        operation: 'CREATE',
      };
      const name = podDisplayName(pod, namespace);
      // The answer writes the uid between fixed text: a UUID as it is, and what needs escaping
      // (quotes, a control character, a lone surrogate) or not (é, an emoji) as JSON.stringify would.
      const uids = [
        `0b7c5a3e-5d4f-4f7e-9a61-${String(i).padStart(12, '0')}`,
        `uid-${i}-é`,
        `uid-${i}-"quoted"-é-😀`,
        `uid-${i}\\back\tslash-\ud800`,
      ];
      const fresh = injectPod(pod, context);
      for (const round of ['miss', 'hit']) {
        const cached = injectPod(pod, { ...context, sidecars: cache });
        t.same(cached, fresh, `pod ${i} (${round}): same result`);
        for (const [u, uid] of uids.entries()) {
          const want = JSON.stringify(admissionResponse(uid, fresh, name));
          t.equal(
            admissionAnswer(uid, cached, name),
            want,
            `pod ${i} (${round}, uid ${u}): same answer text`,
          );
        }
        compared++;
        if (cached.outcome === 'injected' && cached.patch.length > 0) patches++;
      }
    }
  });
}

t.test('the comparison covered patches, not only empty answers', async (t) => {
  t.ok(compared > 100, `${compared} answers compared`);
  t.ok(patches >= 30, `${patches} of them carry a patch`);
});
