// Custom node:test reporter for tests/run.sh: one line per finished test,
//   PASS <file>: <name>
//   FAIL <file>: <name>: <error message on one line>
// and diagnostics as "INFO ...". Suite (describe) wrapper events are not
// printed themselves, except when a suite fails for a reason of its own (a
// before/after hook that threw): then the tests it cancelled carry that
// reason, or, if it cancelled none, the suite gets a FAIL line of its own.
// A test file that crashes before or outside its tests gets one FAIL line
// with the last line it wrote to stderr.
//
// Usage: node --test --test-reporter=./reporter.mjs a.test.mjs b.test.mjs
import path from 'node:path';

const MAX_MSG = 600;

function oneLine(s) {
    s = String(s ?? '').trim().replace(/\s*\n\s*/g, ' | ').replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
    return s.length > MAX_MSG ? s.slice(0, MAX_MSG) + '...' : s;
}

function errorText(err) {
    if (err == null) return 'failed';
    const cause = err.cause ?? err;
    if (cause instanceof Error || (typeof cause === 'object' && cause && 'message' in cause)) {
        const name = cause.name && cause.name !== 'Error' && cause.name !== 'AssertionError' ? cause.name + ': ' : '';
        return oneLine(name + (cause.message || String(cause)));
    }
    return oneLine(typeof cause === 'string' ? cause : JSON.stringify(cause));
}

const base = (f) => (f ? path.basename(f) : 'api');
const isSuite = (d) => d.details?.type === 'suite';
const failureType = (d) => d.details?.error?.failureType;
const isFileTest = (d) => d.nesting === 0 && d.file && d.name === d.file;
const SUMMARY_KEYS = /^(tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) /;

export default async function* reporter(source) {
    const stderrTail = new Map(); // file -> last stderr lines
    let pending = [];             // fail events cancelled by their parent, waiting for the parent's reason
    const summary = [];

    function* flush(reason) {
        for (const d of pending) {
            const why = reason ? `cancelled: ${reason}` : errorText(d.details?.error);
            yield `FAIL ${base(d.file)}: ${oneLine(d.name)}: ${why}\n`;
        }
        pending = [];
    }

    for await (const ev of source) {
        const d = ev.data ?? {};
        switch (ev.type) {
        case 'test:pass':
            if (isSuite(d) || isFileTest(d)) break;
            if (d.skip !== undefined && d.skip !== false) {
                yield `INFO ${base(d.file)}: ${oneLine(d.name)}: skipped${typeof d.skip === 'string' ? ': ' + oneLine(d.skip) : ''}\n`;
                break;
            }
            if (d.todo !== undefined && d.todo !== false) break;
            yield `PASS ${base(d.file)}: ${oneLine(d.name)}\n`;
            break;
        case 'test:fail': {
            const ft = failureType(d);
            if (isFileTest(d)) {
                // the file itself failed outside its tests (crash, syntax error, exit code)
                yield* flush(null);
                const lines = (stderrTail.get(d.file) ?? []).filter((l) => l.trim() && !/^\s+at /.test(l) && !/^Node\.js v/.test(l));
                const last = lines.length ? lines[lines.length - 1] : errorText(d.details?.error);
                yield `FAIL ${base(d.file)}: test file failed: ${oneLine(last)}\n`;
                break;
            }
            if (isSuite(d)) {
                if (ft === 'subtestsFailed') { yield* flush(null); break; }
                const reason = `${oneLine(d.name)}: ${errorText(d.details?.error)}${d.details?.error?.message && d.details.error.cause ? ' (' + oneLine(d.details.error.message) + ')' : ''}`;
                if (pending.length) yield* flush(reason);
                else yield `FAIL ${base(d.file)}: ${reason}\n`;
                break;
            }
            if (ft === 'cancelledByParent') { pending.push(d); break; }
            yield `FAIL ${base(d.file)}: ${oneLine(d.name)}: ${errorText(d.details?.error)}\n`;
            break;
        }
        case 'test:diagnostic':
            if (!d.file && d.nesting === 0 && SUMMARY_KEYS.test(d.message)) { summary.push(d.message.replace(/^duration_ms (\d+)\.?\d*/, 'duration_ms $1')); break; }
            yield `INFO ${base(d.file)}: ${oneLine(d.message)}\n`;
            break;
        case 'test:stdout':
            for (const l of String(d.message).split('\n')) if (l.trim()) yield `INFO ${base(d.file)}: stdout: ${oneLine(l)}\n`;
            break;
        case 'test:stderr': {
            const arr = stderrTail.get(d.file) ?? [];
            arr.push(...String(d.message).split('\n').filter((l) => l.length));
            if (arr.length > 40) arr.splice(0, arr.length - 40);
            stderrTail.set(d.file, arr);
            break;
        }
        case 'test:complete':
            if (isFileTest(d) && d.details?.duration_ms != null) yield `INFO ${base(d.file)}: finished in ${(d.details.duration_ms / 1000).toFixed(1)} s\n`;
            break;
        default:
            break;
        }
    }
    yield* flush(null);
    if (summary.length) yield `INFO api summary: ${summary.join(', ')}\n`;
}
