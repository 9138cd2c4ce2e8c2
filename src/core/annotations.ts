// Per-pod overrides: the flipt.io/* annotations (rows of the settings table in config-schema.ts),
// every error returned at once. An invalid or unknown annotation rejects the pod rather than being
// silently ignored.
import { SETTING_ROWS, type InjectorConfig } from './config-schema.ts';
import { crossFieldProblems, type SidecarSettings } from './settings.ts';
import { checkFormat, detailSuffix, type Format } from './formats.ts';
import { clip, MAX_PROBLEMS, ProblemList, quote, SmallestStrings } from './bounded.ts';
import { closestKey } from './suggest.ts';

export const ANNOTATION_PREFIX = 'flipt.io/';
export const INJECT_LABEL = 'flipt.io/inject';
export const STATUS_ANNOTATION = 'flipt.io/status';

interface AnnotationSpec {
  format: Format;
  description: string;
  apply: (settings: SidecarSettings, value: string) => void;
}

const COERCE = {
  string: (v: string) => v,
  integer: (v: string) => Number(v),
  boolean: (v: string) => v === 'true',
};

/** Every per-pod annotation, from the settings table (config-schema.ts), in its order. */
export const ANNOTATIONS: Readonly<Record<string, AnnotationSpec>> = Object.fromEntries(
  SETTING_ROWS.flatMap(({ path, meta }) => {
    if (!meta.annotation || !meta.format) return [];
    const coerce = COERCE[meta.coerce ?? 'string'];
    const parents = path.slice(0, -1);
    const field = path.at(-1) as string;
    const spec: AnnotationSpec = {
      format: meta.format,
      description: meta.annotation.description,
      apply: (settings, value) => {
        let target = settings as unknown as Record<string, Record<string, unknown>>;
        for (const key of parents) target = target[key] as unknown as Record<string, Record<string, unknown>>;
        (target as Record<string, unknown>)[field] = coerce(value);
      },
    };
    return [[meta.annotation.key, spec]];
  }),
);

/** Where to find the known annotations: said once per refusal, not after every unknown key. */
export const ANNOTATIONS_POINTER =
  'the flipt.io/* annotations are listed under "Per-pod annotations" in the flipt-sidecar-injector README';

function unknownKeyProblem(key: string): string {
  if (key === INJECT_LABEL)
    return `annotation ${key} is not recognised (${INJECT_LABEL} is a label, not an annotation: set it under metadata.labels)`;
  const suggestion = closestKey(key, Object.keys(ANNOTATIONS));
  return `annotation ${clip(key)} is not recognised${suggestion ? ` (did you mean ${suggestion}?)` : ''}`;
}

export type SettingsResult = { ok: true; settings: SidecarSettings } | { ok: false; errors: string[] };

// A copy deep enough for the annotation setters to write into (structuredClone is several times slower
// and this runs for every admitted pod).
function sidecarDefaults({ sidecar, storage, credentials }: InjectorConfig): SidecarSettings {
  const { requests, limits } = sidecar.resources;
  return {
    sidecar: { ...sidecar, resources: { requests: { ...requests }, limits: { ...limits } } },
    storage: { ...storage },
    credentials: { ...credentials },
  };
}

/**
 * The sidecar settings for a pod: config defaults, overridden by the pod's flipt.io/* annotations.
 * Returns every invalid or unknown annotation, and every conflict between the resulting values.
 */
export function resolveSettings(
  config: InjectorConfig,
  annotations: Record<string, string> = {},
): SettingsResult {
  const settings = sidecarDefaults(config);
  // One pass over the pod's keys. Known keys are checked in table order, then unknown ones sorted:
  // the same errors in the same order whatever order the pod lists its annotations in (the API
  // server hands webhooks sorted maps, a file need not). Only the first MAX_PROBLEMS unknown keys
  // are kept (and counted beyond), so a pod with thousands of them costs one linear pass.
  const unknown = new SmallestStrings(MAX_PROBLEMS);
  for (const key in annotations) {
    if (key.startsWith(ANNOTATION_PREFIX) && key !== STATUS_ANNOTATION && !Object.hasOwn(ANNOTATIONS, key))
      unknown.add(key);
  }
  const problems = new ProblemList(MAX_PROBLEMS);
  for (const [key, spec] of Object.entries(ANNOTATIONS)) {
    if (!Object.hasOwn(annotations, key)) continue;
    const value = annotations[key] as string;
    const problem = checkFormat(spec.format, value);
    if (problem) {
      problems.add(
        () =>
          `annotation ${key}: invalid value ${quote(value)}${detailSuffix(problem)}; allowed: ${spec.format.allowed}`,
      );
      continue;
    }
    spec.apply(settings, value);
  }
  for (const key of unknown.items) problems.add(() => unknownKeyProblem(key));
  // Counted, not examined: the unknown keys past the first MAX_PROBLEMS.
  problems.addUnexamined(unknown.count - unknown.items.length);
  if (problems.count > 0) {
    const errors = problems.list();
    const typos = unknown.count - (unknown.items.includes(INJECT_LABEL) ? 1 : 0);
    if (typos > 0) errors.push(ANNOTATIONS_POINTER);
    return { ok: false, errors };
  }
  const errors = crossFieldProblems(settings, annotations);
  return errors.length > 0 ? { ok: false, errors } : { ok: true, settings };
}
