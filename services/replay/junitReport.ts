import junitModule, { type Builder } from 'junit-report-builder';

// the package is CommonJS (`module.exports = builder`) with an ESM-style `export default` in its types
const junit = junitModule as unknown as Builder;

/** one CI test case: a history replayed under one variant */
export interface JunitCase {
  readonly suite: string;
  readonly name: string;
  readonly status: 'passed' | 'regression' | 'bad-input';
  /** the readable diff or the input errors */
  readonly details: readonly string[];
}

/** JUnit XML for CI systems: a suite per history, a case per variant; regressions fail, bad input errors */
export const writeJunitReport = (path: string, cases: readonly JunitCase[]): void => {
  const builder = junit.newBuilder();
  const suites = new Map<string, ReturnType<typeof builder.testSuite>>();
  for (const c of cases) {
    let suite = suites.get(c.suite);
    if (!suite) {
      suite = builder.testSuite().name(c.suite);
      suites.set(c.suite, suite);
    }
    const tc = suite.testCase().className(`replay.${c.suite}`).name(c.name);
    if (c.status === 'regression') tc.failure(c.details.join('\n'), 'regression');
    if (c.status === 'bad-input') tc.error(c.details.join('\n'), 'bad-input');
  }
  builder.writeTo(path);
};
