// Pure: the export marker's YAML document (see common/export-marker.ts for why it exists). It
// comes last in the object, after the master's namespaces, and carries no flags, so it changes no
// evaluation; a sidecar that has loaded the object answers for its namespace.
import { DOCUMENT_VERSION, renderYaml, type ExportDocument } from './render.ts';

export const MARKER_DESCRIPTION =
  'Written by flipt-exporter into every export; the injected startup probe waits for it. Holds no flags.';

export function markerDocument(key: string): ExportDocument {
  return {
    version: DOCUMENT_VERSION,
    namespace: { key, name: key, description: MARKER_DESCRIPTION },
    flags: [],
    segments: [],
  };
}

export function markerYaml(key: string): string {
  return renderYaml([markerDocument(key)]);
}
