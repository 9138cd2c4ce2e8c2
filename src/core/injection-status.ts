// The flipt.io/status annotation: what the injector put into a pod, read back (and refused when it
// is not one the injector wrote) and written with a fixed key order, so the same injection always
// yields the same bytes.
import { STATUS_ANNOTATION } from './annotations.ts';
import { quote } from './bounded.ts';
import type { Pod } from './k8s.ts';
import { SIDECAR_NAME, VOLUME_NAME } from './sidecar.ts';

/** What the injector put into a pod, recorded in the flipt.io/status annotation. */
export interface InjectionStatus {
  initContainers: string[];
  containers: string[];
  volumes: string[];
}

type StatusRead = { ok: true; status: InjectionStatus | undefined } | { ok: false; error: string };

export function readStatus(pod: Pod): StatusRead {
  const text = pod.metadata?.annotations?.[STATUS_ANNOTATION];
  if (text === undefined) return { ok: true, status: undefined };
  const invalid = {
    ok: false as const,
    error: `annotation ${STATUS_ANNOTATION} is written by the injector and is not valid (${quote(text)}); remove it and create the pod again`,
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return invalid;
  }
  // Only names the injector ever writes: a status is at most three one-item lists, so checking it,
  // and later looking names up in it, costs nothing however large a forged one is.
  const isNames = (v: unknown, ours: string) =>
    Array.isArray(v) && v.length <= 1 && v.every((n) => n === ours);
  if (typeof parsed !== 'object' || parsed === null) return invalid;
  const record = parsed as Record<string, unknown>;
  if (
    !isNames(record.initContainers, SIDECAR_NAME) ||
    !isNames(record.containers, SIDECAR_NAME) ||
    !isNames(record.volumes, VOLUME_NAME)
  )
    return invalid;
  return { ok: true, status: record as unknown as InjectionStatus };
}

/** Status annotation text: fixed key order, so the same injection always yields the same bytes. */
export function statusText(native: boolean): string {
  return native ? NATIVE_STATUS : CLASSIC_STATUS;
}

const status = (native: boolean): InjectionStatus => ({
  initContainers: native ? [SIDECAR_NAME] : [],
  containers: native ? [] : [SIDECAR_NAME],
  volumes: [VOLUME_NAME],
});
const NATIVE_STATUS = JSON.stringify(status(true));
const CLASSIC_STATUS = JSON.stringify(status(false));
