// Loading tau2 task files (tasks.json, split_tasks.json) for a domain folder.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tau2Task } from './domain.js';
import { parsePyJson } from './pyjson.js';

/**
 * The τ²-bench release task set (tasks.json at commit 37199f3, renamed; see the data's SOURCE.md): every task's
 * reward_basis is DB and COMMUNICATE, as on the leaderboard. tau2's HEAD tasks.json puts NL_ASSERTION (an
 * LLM judge) in the basis of 112 of 114 retail tasks.
 */
export const RELEASE_TASKS_FILE = 'tasks_release_37199f3.json';

/**
 * The task file a domain folder is served from when none is configured: the release set where the folder
 * holds it (τ² airline and retail), else tasks.json (telecom's is the release set already; mock; local).
 */
export function defaultTasksFile(domainDir: string): string {
  const release = join(domainDir, RELEASE_TASKS_FILE);
  return existsSync(release) ? release : join(domainDir, 'tasks.json');
}

/**
 * Reads a tau2 task file (a JSON array of tasks). Numbers keep Python's int/float distinction.
 * Throws naming the file when it is missing, not JSON, or not an array of objects with string ids.
 */
export function loadTasks(file: string): Tau2Task[] {
  let data: unknown;
  try {
    data = parsePyJson(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read tasks file ${file}: ${(e as Error).message}`);
  }
  if (!Array.isArray(data)) throw new Error(`tasks file ${file}: expected a JSON array of tasks`);
  data.forEach((t, i) => {
    if (!t || typeof t !== 'object' || typeof (t as Tau2Task).id !== 'string') {
      throw new Error(`tasks file ${file}: task #${i} has no string 'id'`);
    }
  });
  return data as Tau2Task[];
}

/** Reads split_tasks.json beside the tasks, if present: split name → task ids. */
export function loadSplits(domainDir: string): Record<string, string[]> {
  const file = join(domainDir, 'split_tasks.json');
  if (!existsSync(file)) return {};
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, string[]>;
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
}
