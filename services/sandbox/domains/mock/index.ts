// The tau2 "mock" domain: a tiny task tracker used to exercise message history, initialization data and
// actions, environment assertions and user-side state. Behaviour follows tau2's mock toolkit.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Domain, DomainState, ToolDef } from '../../domain.js';
import { ToolError } from '../../domain.js';
import { pyStr } from '../../pyjson.js';

interface MockTask {
  task_id: string;
  title: string;
  description: string | null;
  status: 'pending' | 'completed';
}
interface MockUser {
  user_id: string;
  name: string;
  tasks: string[];
}
export interface MockDb {
  tasks: Record<string, MockTask>;
  users: Record<string, MockUser>;
}
interface Notification {
  notification_id: string;
  message: string;
  status: string;
  task_id: string | null;
}

const STATUSES = ['pending', 'completed'];

function readJson(path: string): any {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`mock domain: cannot read ${path}: ${(e as Error).message}`);
  }
}

function normalizeTask(t: any): MockTask {
  return { task_id: t.task_id, title: t.title, description: t.description ?? null, status: t.status };
}

function normalizeDb(raw: any): MockDb {
  const tasks: Record<string, MockTask> = {};
  for (const [id, t] of Object.entries<any>(raw.tasks ?? {})) tasks[id] = normalizeTask(t);
  const users: Record<string, MockUser> = {};
  for (const [id, u] of Object.entries<any>(raw.users ?? {})) users[id] = { user_id: u.user_id, name: u.name, tasks: [...u.tasks] };
  return { tasks, users };
}

const tools: ToolDef<MockDb>[] = [
  {
    name: 'create_task',
    description: 'Create a new task for a user. Returns the created task.',
    type: 'WRITE',
    parameters: {
      type: 'object',
      properties: {
        user_id: { type: 'string', description: 'The id of the user creating the task.' },
        title: { type: 'string', description: 'The title of the task.' },
        description: { type: ['string', 'null'], description: 'Optional description of the task.' },
      },
      required: ['user_id', 'title'],
    },
    run(state, args) {
      const userId = String(args.user_id);
      if (!(userId in state.db.root.users)) throw new ToolError(`User ${userId} not found`);
      const taskId = `task_${Object.keys(state.db.root.tasks).length + 1}`;
      const task: MockTask = { task_id: taskId, title: String(args.title), description: (args.description as string) ?? null, status: 'pending' };
      state.db.edit('tasks')[taskId] = task;
      state.db.edit('users', userId, 'tasks').push(taskId);
      return task;
    },
  },
  {
    name: 'get_users',
    description: 'Get all users in the database.',
    type: 'READ',
    parameters: { type: 'object', properties: {}, required: [] },
    run(state) {
      return Object.values(state.db.root.users);
    },
  },
  {
    name: 'update_task_status',
    description: 'Update the status of a task ("pending" or "completed"). Returns the updated task.',
    type: 'WRITE',
    parameters: {
      type: 'object',
      properties: {
        task_id: { type: 'string', description: 'The id of the task to update.' },
        status: { type: 'string', enum: STATUSES, description: 'The new status of the task.' },
      },
      required: ['task_id', 'status'],
    },
    run(state, args) {
      const taskId = String(args.task_id);
      if (!(taskId in state.db.root.tasks)) throw new ToolError(`Task ${taskId} not found`);
      const task = state.db.edit('tasks', taskId);
      task.status = args.status;
      return task;
    },
  },
  {
    name: 'transfer_to_human_agents',
    description:
      "Transfer the user to a human agent, with a summary of the user's issue. Only transfer if the user explicitly asks for a human agent, or the issue cannot be solved with the policy and the available tools.",
    type: 'GENERIC',
    terminal: true,
    parameters: {
      type: 'object',
      properties: { summary: { type: 'string', description: "A summary of the user's issue." } },
      required: ['summary'],
    },
    run() {
      return 'Transfer successful';
    },
  },
];

function taskOf(state: DomainState<MockDb>, taskId: string): MockTask {
  const t = state.db.root.tasks[taskId];
  if (!t) throw new ToolError(`Task ${taskId} not found`);
  return t;
}

/** Loads the mock domain from a tau2 mock folder (db.json, user_db.json, policy.md). Throws naming the file on failure. */
export function loadMockDomain(dataDir: string): Domain<MockDb> {
  const db = normalizeDb(readJson(join(dataDir, 'db.json')));
  const userDb = readJson(join(dataDir, 'user_db.json'));
  const policy = readFileSync(join(dataDir, 'policy.md'), 'utf8');
  return {
    name: 'mock',
    policy,
    tools,
    initialDb: db,
    initialUserDb: userDb,
    isFloatField: () => false,
    assertions: {
      assert_task_status: (state, args) => taskOf(state, String(args.task_id)).status === args.expected_status,
      assert_number_of_tasks: (state, args) => {
        const u = state.db.root.users[String(args.user_id)];
        if (!u) throw new ToolError(`User ${pyStr(args.user_id)} not found`);
        return u.tasks.length === Number(args.expected_number);
      },
      assert_notification_status: (state, args) => {
        const n = state.userDb?.root.notifications?.[String(args.notification_id)] as Notification | undefined;
        if (!n) throw new ToolError(`Notification ${pyStr(args.notification_id)} not found`);
        return n.status === args.expected_status;
      },
    },
    envFunctions: {
      add_notification: (state, args) => {
        if (!state.userDb) throw new ToolError('this domain has no user state');
        const id = String(args.notification_id);
        const n: Notification = { notification_id: id, message: String(args.message), status: 'unread', task_id: (args.task_id as string) ?? null };
        state.userDb.edit('notifications')[id] = n;
        return n;
      },
    },
  };
}
