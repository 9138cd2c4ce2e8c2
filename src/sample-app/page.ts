// The comparison page: each flag's answer from the sidecar (localhost) and from flipt-master, side by
// side with both request latencies. Pure: takes the two evaluations, returns HTML. Everything that
// came from a request or from Flipt is escaped.
import type { Evaluation, FlagAnswer } from './flipt.ts';

export interface Comparison {
  namespace: string;
  entityId: string;
  context: Record<string, string>;
  sidecar: Evaluation & { url: string };
  master: Evaluation & { url: string };
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);

/** Whether both sides gave the same answer for every flag. */
export function agree(comparison: Comparison): boolean | undefined {
  const { sidecar, master } = comparison;
  if (!sidecar.ok || !master.ok) return undefined;
  return sidecar.answers.every((a, i) => {
    const b = master.answers[i];
    return b !== undefined && a.kind === b.kind && a.value === b.value;
  });
}

function cell(answer: FlagAnswer | undefined): string {
  if (!answer) return '<td class="missing">-</td>';
  const attachment = answer.attachment
    ? `<div class="attachment">${escapeHtml(answer.attachment)}</div>`
    : '';
  return `<td class="${answer.kind}"><strong>${escapeHtml(answer.value)}</strong> <span class="reason">${escapeHtml(answer.reason)}</span>${attachment}</td>`;
}

function header(title: string, evaluation: Evaluation & { url: string }): string {
  const status = evaluation.ok
    ? `${evaluation.durationMs.toFixed(2)} ms`
    : `<span class="error">failed after ${evaluation.durationMs.toFixed(2)} ms: ${escapeHtml(evaluation.error)}</span>`;
  return `<th>${title}<br><code>${escapeHtml(evaluation.url)}</code><br>${status}</th>`;
}

export function renderPage(comparison: Comparison, flags: string[], refreshSeconds = 5): string {
  const { sidecar, master } = comparison;
  const rows = flags
    .map((flag, i) => {
      const a = sidecar.ok ? sidecar.answers[i] : undefined;
      const b = master.ok ? master.answers[i] : undefined;
      const same = a && b ? a.kind === b.kind && a.value === b.value : undefined;
      const mark = same === undefined ? '' : same ? '=' : '&ne;';
      return `<tr><th><code>${escapeHtml(flag)}</code></th>${cell(a)}${cell(b)}<td class="same">${mark}</td></tr>`;
    })
    .join('\n');
  const agreement = agree(comparison);
  const ratio =
    sidecar.ok && master.ok && sidecar.durationMs > 0
      ? `<p>flipt-master took <strong>${(master.durationMs / sidecar.durationMs).toFixed(1)}&times;</strong> as long as the sidecar for this request (one sample; reload for more).</p>`
      : '';
  const summary =
    agreement === undefined
      ? '<p class="error">One side did not answer: see the column header.</p>'
      : agreement
        ? '<p>Both give the same answers.</p>'
        : '<p>The answers differ: the sidecar serves the last export (the exporter runs every minute, the sidecar polls the bucket every 30 s), so a change made on the master shows here a little later.</p>';
  const input = (name: string, value: string, label: string) =>
    `<label>${label} <input name="${name}" value="${escapeHtml(value)}" maxlength="100"></label>`;
  const ctx = comparison.context;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="${refreshSeconds}">
<title>flipt sidecar vs master</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; }
table { border-collapse: collapse; } th, td { border: 1px solid #ccc; padding: .4rem .7rem; text-align: left; vertical-align: top; }
.reason { color: #666; font-size: .85em; } .attachment { font-family: monospace; font-size: .8em; color: #444; }
.error { color: #b00; } .same { text-align: center; } form { margin: 1rem 0; } label { margin-right: 1rem; }
</style>
</head>
<body>
<h1>Feature flags: sidecar on localhost vs flipt-master</h1>
<form method="get">
${input('entity', comparison.entityId, 'entity id')}
${input('plan', ctx.plan ?? '', 'plan')}
${input('region', ctx.region ?? '', 'region')}
${input('orders', ctx.orders ?? '', 'orders')}
<button>evaluate</button>
</form>
<p>Namespace <code>${escapeHtml(comparison.namespace)}</code>; one batch request to each, every ${refreshSeconds} s.</p>
<table>
<tr><th>flag</th>${header('sidecar (localhost)', sidecar)}${header('flipt-master', master)}<th>same</th></tr>
${rows}
</table>
${summary}
${ratio}
</body>
</html>
`;
}
