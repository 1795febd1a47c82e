/**
 * Setting up from a fresh clone: `npm ci` must accept the committed lock file, so that CI and a
 * new user install exactly what was tested.
 */
import assert from 'node:assert/strict';
import { cp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { describeResult, killAll, REPO_ROOT, runProcess } from '../support/cli.js';
import { makeTempDir, removeTree } from '../support/files.js';

const cleanups: (() => Promise<void>)[] = [];

after(async () => {
  killAll();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

interface LockEntry {
  version?: string;
  optionalDependencies?: Record<string, string>;
}

describe('setup', () => {
  test('npm ci accepts the lock file: every platform’s optional package is listed', async () => {
    const lock = JSON.parse(await readFile(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, LockEntry>;
    };
    // npm ci refuses a lock file that leaves out an optional package of another platform.
    const missing: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      for (const name of Object.keys(entry.optionalDependencies ?? {})) {
        if (!(`node_modules/${name}` in lock.packages) && !(`${path}/node_modules/${name}` in lock.packages)) {
          missing.push(`${name} (optional for ${path || 'the package'})`);
        }
      }
    }
    assert.deepEqual(missing, [], 'packages missing from package-lock.json');

    // And npm itself agrees, on a copy holding only what a fresh clone has; offline, and without
    // installing anything, so the test needs no network.
    const dir = await makeTempDir('dmp-npm-ci-');
    cleanups.push(() => removeTree(dir));
    for (const name of ['package.json', 'package-lock.json']) await cp(join(REPO_ROOT, name), join(dir, name));
    const result = await runProcess(
      'npm',
      ['ci', '--dry-run', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--cache', join(dir, '.cache')],
      { cwd: dir, timeoutMs: 120_000 },
    );
    assert.equal(result.code, 0, describeResult(result));
    assert.doesNotMatch(result.stderr, /not in sync|Missing:/, describeResult(result));
  });
});
