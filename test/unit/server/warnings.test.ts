import t from 'tap';
import { formatWarnings } from '../../../src/admission/review.ts';

t.test('warnings stay within what the API server keeps', async (t) => {
  t.same(formatWarnings(['a\nb\tc', '', 'a\nb\tc', 'x']), ['a b c', 'x'], 'control characters become spaces; empty and duplicate dropped');
  const long = 'w'.repeat(300);
  t.same(formatWarnings([long]), [long], 'one long warning is kept whole while the total is small');
  const many = Array.from({ length: 40 }, (_, i) => `${i}:${'x'.repeat(300)}`);
  const out = formatWarnings(many);
  const total = out.reduce((n, m) => n + [...m].length, 0);
  t.ok(total <= 4096, `total ${total} within 4096`);
  t.ok(out.slice(0, -1).every((m) => [...m].length <= 256), 'each cut to 256');
  t.match(out.at(-1), /^\d+ more warning\(s\) not shown; see the webhook log$/);
});
