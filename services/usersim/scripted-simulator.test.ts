// The scripted user on real τ² retail, airline and mock tasks, and on Parley's explicit parley_user form.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeTau2, tau2DomainDir } from '../../test/fixtures/tau2-data.js';
import { extractFacts, toFirstPerson } from './fact-extraction.js';
import { renderUserScenario } from './scenario.js';
import { ScriptedConversation, scriptedProfile, scriptedProfileFromText } from './scripted-simulator.js';
import { TaskSchema, parseTaskJson, type Task } from './task-schema.js';
import { UserStop } from './types.js';

function task(domain: string, id: string): Task {
  const all = JSON.parse(readFileSync(resolve(tau2DomainDir(domain), 'tasks.json'), 'utf8')) as Array<{ id: string }>;
  return TaskSchema.parse(all.find((t) => t.id === id));
}

async function talk(t: Task, agent: string[], maxIdleTurns = 2) {
  const user = new ScriptedConversation(scriptedProfile(t), { maxIdleTurns });
  const turns = [await user.start({ greeting: 'Hi! How can I help you today?' })];
  for (const a of agent) turns.push(await user.reply(a));
  return turns;
}

describe('fact extraction and first person', () => {
  it('reads labelled and unlabelled facts', () => {
    const facts = extractFacts('Your name is Daiki Sanchez, and you live in 46236, your email is daikisanchez1479@example.com.');
    expect(Object.fromEntries(facts.map((f) => [f.key, f.values]))).toEqual({
      name: ['Daiki Sanchez'],
      email: ['daikisanchez1479@example.com'],
      'zip code': ['46236'],
    });
    const generic = extractFacts('Your loyalty number is LN-4411.\nPhone: 555 0100');
    expect(generic.map((f) => [f.key, f.values[0]])).toEqual([
      ['loyalty number', 'LN-4411'],
      ['phone', '555 0100'],
    ]);
  });
  it('rewrites second person', () => {
    expect(toFirstPerson("You want to cancel your order because you're sick; it is yours.")).toBe("I want to cancel my order because I'm sick; it is mine.");
    expect(toFirstPerson('The agent told you to wait.')).toBe('The agent told me to wait.');
  });
});

describeTau2('retail', 'scripted user on retail tasks', () => {
  it('task 0: opens with the reason only, says it lacks the email, gives name and zip when asked, confirms, stops when done', async () => {
    const turns = await talk(task('retail', '0'), [
      'I can help with that. Could you please provide your email address so I can find your account?',
      'No problem. Could you give me your first and last name and your zip code instead?',
      'I found order #W2378156. Do you want me to exchange the keyboard for item 7706410293 and the thermostat for 7747408585? Please confirm (yes) to proceed.',
      'Your exchange has been processed successfully. Is there anything else I can help with?',
    ]);
    const [opening, email, identity, confirm, done] = turns.map((t) => t!.text);
    expect(opening).toMatch(/^Hi! I received my order #W2378156 and wish to exchange the mechanical keyboard/);
    expect(opening).not.toMatch(/Yusuf|19122/);
    expect(email).toMatch(/don't remember my email/);
    expect(identity).toBe('My name is Yusuf Rossi. My zip code is 19122.');
    expect(confirm).toBe('Yes, please go ahead.');
    expect(done).toContain('###STOP###');
    expect(turns.at(-1)!.stop).toBe(UserStop.STOP);
    expect(turns.slice(0, -1).every((t) => t.stop === UserStop.UNSPECIFIED)).toBe(true);
    expect(turns.every((t) => t.usage.costUsd === 0 && t.source === 'scripted')).toBe(true);
  });

  it('task 10: reveals the email and the user id when asked', async () => {
    const [, email, id] = await talk(task('retail', '10'), ['Sure. What is your email address?', 'Thanks. Can you also share your user ID?']);
    expect(email!.text).toBe('My email is mia.garcia2723@example.com.');
    expect(id!.text).toBe('My user id is mia_garcia_4516.');
  });

  it('task 35: offers the second email when asked again', async () => {
    const [, first, second] = await talk(task('retail', '35'), [
      'Could you provide your email?',
      'I could not find that email. Could you provide another email address?',
    ]);
    expect(first!.text).toContain('aarav.santos8321@example.com');
    expect(second!.text).toContain('aarav.santos8320@example.com');
  });

  it('reveals further details on open questions, then stops after turns with nothing to add', async () => {
    const turns = await talk(task('retail', '0'), ['I see. Tell me more.', 'Okay, let me look into it.', 'Please hold on.', 'Still checking.']);
    expect(turns[1]!.text).toMatch(/^If there is no keyboard that is clicky.*I'd go for no backlight\.$/);
    expect(turns[2]!.text).toBe('Okay.');
    expect(turns[3]!.stop).toBe(UserStop.STOP);
  });

  it('is deterministic', async () => {
    const script = ['What is your name and zip code?', 'Shall I proceed?', 'The order has been exchanged.'];
    const a = await talk(task('retail', '5'), script);
    const b = await talk(task('retail', '5'), script);
    expect(a.map((t) => t.text)).toEqual(b.map((t) => t.text));
    expect(a[1]!.text).toBe('My zip code is 28236.'); // known info gives a user id, not a name
  });

  it('builds the same profile from the rendered scenario text as from the task', () => {
    const t = task('retail', '36');
    const fromText = scriptedProfileFromText(renderUserScenario(t.user_scenario));
    expect(fromText).toEqual(scriptedProfile(t));
  });
});

describeTau2('airline', 'scripted user on airline tasks', () => {
  it('task 0: gives the user id and the reservation, and transfers when told', async () => {
    const turns = await talk(task('airline', '0'), [
      'I can help. May I have your user id?',
      'Which reservation would you like to cancel?',
      'YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON.',
    ]);
    expect(turns[0]!.text).toBe('Hi! I want to cancel reservation EHGLP3.');
    expect(turns[1]!.text).toBe('My user id is emma_kim_9957.');
    expect(turns[2]!.text).toBe('The reservation number is EHGLP3.');
    expect(turns[3]!.text).toBe('###TRANSFER###');
    expect(turns[3]!.stop).toBe(UserStop.TRANSFER);
  });

  it('task 7: lists both reservations; task 21 says it does not remember the reservation id', async () => {
    const [, both] = await talk(task('airline', '7'), ['Could you tell me the reservation IDs?']);
    expect(both!.text).toBe('The reservation numbers are XEHM4B and 59XX6W.');
    const [, name, unknown] = await talk(task('airline', '21'), ['What is your full name?', 'What is the reservation id?']);
    expect(name!.text).toBe('My name is Sofia Kim.');
    expect(unknown!.text).toBe("I'm sorry, I don't remember my reservation id.");
  });

  it('answers a confirmation that mentions payment with "yes", not with a payment fact', async () => {
    const [, yes] = await talk(task('airline', '35'), ['The refund goes to the original payment method. Do you want me to proceed with the cancellation?']);
    expect(yes!.text).toBe('Yes, please go ahead.');
  });
});

describeTau2('mock', 'scripted user on mock (plain-string instructions)', () => {
  it('opens with the first sentence and gives the user id when asked', async () => {
    const turns = await talk(task('mock', 'create_task_1'), ['Sure. Which user should the task be created for?']);
    expect(turns[0]!.text).toBe('Hi! I am a team member who needs to create a task for an upcoming meeting.');
    expect(turns[1]!.text).toBe('My user id is user_1.');
  });
});

describe('explicit parley_user form', () => {
  const taskJson = JSON.stringify({
    id: 'local-1',
    user_scenario: { instructions: 'You want to book a table.' },
    parley_user: {
      opening: 'I would like to book a table for tonight.',
      facts: {
        'party size': { keywords: ['how many', 'party size', 'people'], value: '4', phrase: 'We are {value} people' },
        phone: { keywords: ['phone', 'number to reach'], value: ['555-0100', '555-0199'] },
      },
      unknown: { 'loyalty id': { keywords: ['loyalty'] } },
      goal_phrases: ['table is booked'],
      details: ['A window seat would be nice.'],
    },
  });

  it('uses the opening verbatim, reveals facts by keyword, stops on a goal phrase', async () => {
    const user = new ScriptedConversation(scriptedProfile(parseTaskJson(taskJson)), { maxIdleTurns: 2 });
    expect((await user.start({ greeting: 'Hello' })).text).toBe('I would like to book a table for tonight.');
    expect((await user.reply('How many people, and what phone number can we reach you at?')).text).toBe('We are 4 people. My phone is 555-0100.');
    expect((await user.reply('That phone does not work. Could you give another phone?')).text).toBe('My phone is 555-0199.');
    expect((await user.reply('Do you have a loyalty id?')).text).toBe("I'm sorry, I don't remember my loyalty id.");
    expect((await user.reply('Anything else?')).text).toBe('A window seat would be nice.');
    const done = await user.reply('Done, your table is booked.');
    expect(done.stop).toBe(UserStop.STOP);
  });

  it("ends the conversation when the agent's text holds ###STOP### (the agent itself ends nothing in tau2 or MUA-RL)", async () => {
    const user = new ScriptedConversation(scriptedProfile(parseTaskJson(taskJson)), { maxIdleTurns: 5 });
    await user.start({ greeting: 'Hello' });
    const bye = await user.reply('Thank you for contacting us. ###STOP###');
    expect([bye.stop, bye.text]).toEqual([UserStop.STOP, "Thank you, that's all I needed. ###STOP###"]);
  });

  it('uses a pre-generated first utterance verbatim and rejects empty agent text', async () => {
    const user = new ScriptedConversation(scriptedProfile(parseTaskJson(taskJson)));
    expect((await user.start({ greeting: 'Hi', firstUtterance: 'Hello there.' })).text).toBe('Hello there.');
    await expect(user.reply('   ')).rejects.toMatchObject({ code: 'invalid_argument' });
  });
});
