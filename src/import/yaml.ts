/**
 * Writes the imported config as readable YAML: a header naming the sources and the
 * command, a comment above each part saying where it came from, and the report's
 * untranslated lines at the end as comments.
 */
import { Document, isMap, isSeq, type Node } from 'yaml';
import { formatReport, type ReportEntry } from './ledger.js';

export function renderYaml(
  config: Record<string, unknown>,
  comments: Map<string, string>,
  header: string[],
  report: ReportEntry[],
): string {
  const doc = new Document(config);
  doc.commentBefore = header.map((l) => ` ${l}`).join('\n');
  for (const [path, text] of comments) {
    const keys = path.split('.').map((k) => (/^\d+$/.test(k) ? Number(k) : k));
    const last = keys[keys.length - 1];
    const parentKeys = keys.slice(0, -1);
    const parent = parentKeys.length === 0 ? doc.contents : doc.getIn(parentKeys, true);
    if (isSeq(parent) && typeof last === 'number') {
      const item = parent.items[last] as Node | undefined;
      if (item) item.commentBefore = ` ${text}`;
    } else if (isMap(parent)) {
      const pair = parent.items.find((p) => (p.key as { value?: unknown } | null)?.value === last);
      if (pair && pair.key && typeof pair.key === 'object') (pair.key as Node).commentBefore = ` ${text}`;
    }
  }
  const untranslated = report.filter((e) => e.kind === 'untranslated' || e.kind === 'error');
  if (untranslated.length > 0) {
    doc.comment = [' Not translated (see the import report):', ...formatReport(untranslated).map((l) => `   ${l}`)].join('\n');
  }
  return doc.toString({ lineWidth: 0 });
}
