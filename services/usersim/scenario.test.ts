// Scenario and system-prompt rendering against TOOLS.md §4.4, on real τ² tasks (retail, airline, mock).

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeTau2, tau2DataDir, tau2DomainDir } from '../../test/fixtures/tau2-data.js';
import {
  PERSONA_PLACEHOLDER,
  parseRenderedScenario,
  pyIndent,
  renderSystemPrompt,
  renderTau2SystemPrompt,
  renderUserScenario,
  renderV1SystemPrompt,
} from './scenario.js';
import { TaskSchema, parseTaskJson, type Task } from './task-schema.js';

function tasks(domain: string): Task[] {
  return (JSON.parse(readFileSync(resolve(tau2DomainDir(domain), 'tasks.json'), 'utf8')) as unknown[]).map((t) => TaskSchema.parse(t));
}
const byId = (domain: string, id: string) => tasks(domain).find((t) => t.id === id)!;

describe('pyIndent (textwrap.indent semantics)', () => {
  it('prefixes non-blank lines and keeps line endings', () => {
    expect(pyIndent('a\nb', '\t')).toBe('\ta\n\tb');
    expect(pyIndent('a\n', '\t')).toBe('\ta\n');
    expect(pyIndent('a\r\nb\rc', '>')).toBe('>a\r\n>b\r>c');
  });
  it('leaves whitespace-only lines alone', () => {
    expect(pyIndent('a\n\nb', '\t')).toBe('\ta\n\n\tb');
    expect(pyIndent('a\n \n\t\nb', '\t')).toBe('\ta\n \n\t\n\tb');
    expect(pyIndent('', '\t')).toBe('');
  });
});

describe('renderUserScenario: synthetic cases', () => {
  it('omits null fields, keeps an empty string with its heading', () => {
    const base = { domain: 'd', reason_for_call: 'r', task_instructions: 't' };
    expect(renderUserScenario({ persona: null, instructions: { ...base, known_info: null, unknown_info: null } })).toBe(
      'Instructions:\n\tDomain: d\n\tReason for call:\n\t\tr\n\tTask instructions:\n\t\tt',
    );
    expect(renderUserScenario({ instructions: { ...base, known_info: '' } })).toBe(
      'Instructions:\n\tDomain: d\n\tReason for call:\n\t\tr\n\tKnown info:\n\n\tTask instructions:\n\t\tt',
    );
  });
  it('indents a multi-line persona', () => {
    expect(renderUserScenario({ persona: 'calm\npatient', instructions: 'x' })).toBe('Persona:\n\tcalm\n\tpatient\nInstructions:\n\tx');
  });
});

describeTau2('retail', 'renderUserScenario on retail', () => {
  it('renders task 0 (no persona) as τ² does', () => {
    const expected = [
      'Instructions:',
      '\tDomain: retail',
      '\tReason for call:',
      "\t\tYou received your order #W2378156 and wish to exchange the mechanical keyboard for the same one but with clicky switches and the smart thermostat for one compatible with Google Home instead of Apple HomeKit. If there is no keyboard that is clicky, RGB backlight, full size, you'd go for no backlight.",
      '\tKnown info:',
      '\t\tYou are Yusuf Rossi in zip code 19122.',
      '\tUnknown info:',
      '\t\tYou do not remember your email address.',
      '\tTask instructions:',
      '\t\tYou are detail-oriented and want to make sure everything is addressed in one go.',
    ].join('\n');
    expect(renderUserScenario(byId('retail', '0').user_scenario)).toBe(expected);
  });
});

describeTau2('airline', 'renderUserScenario on airline', () => {
  it('renders multi-line fields with blank and whitespace-only lines (task 21)', () => {
    const expected = [
      'Instructions:',
      '\tDomain: airline',
      '\tReason for call:',
      '\t\tYou want to change the return flights for your upcoming Houston to Denver trip.',
      '\t\tYou want to change it to the fastest return trip (including stopover time) possible on the same day as the departure trip (May 27). If the fastest is not available, you are ok with the next fastest.',
      '\tKnown info:',
      '\t\tYour name is Sofia Kim.',
      '',
      '\t\tYour user id is sofia_kim_7287.',
      ' ',
      "\t\tYour Houston to Denver trip's departure date is May 27.",
      '\tUnknown info:',
      "\t\tYou don't remember your reservation id.",
      '\tTask instructions:',
      "\t\tYou don't care about money but want to stay in economy. ",
      '',
      '\t\tYou also want to add one more checked bag. ',
      '',
      '\t\tYou want to be sure the agent uses your gift card with the smallest balance to pay.',
      '',
      '\t\tYou are reactive to the agent and will not say anything that is not asked. ',
      '',
      '\t\tYou are not good at math so you want the agent to calculate and decide for you. ',
      '',
      '\t\tThis is urgent. You want to get this done ASAP.',
    ].join('\n');
    expect(renderUserScenario(byId('airline', '21').user_scenario)).toBe(expected);
  });
});

describeTau2('mock', 'renderUserScenario on mock (plain-string instructions)', () => {
  it('renders persona and string instructions', () => {
    expect(renderUserScenario(byId('mock', 'create_task_1').user_scenario)).toBe(
      'Persona:\n\tProfessional and direct communicator who writes in a clear and concise style\nInstructions:\n\t' +
        "You are a team member who needs to create a task for an upcoming meeting. Your goal is to create a task to track this important meeting. Create a new task called 'Important Meeting' for user_1.",
    );
  });
  it('omits Persona when the task has none', () => {
    expect(renderUserScenario(byId('mock', 'update_task_1').user_scenario)).toMatch(/^Instructions:\n\tYou have completed the task/);
  });
});

describeTau2('retail', 'rendered scenarios read back', () => {
  it('parseRenderedScenario inverts renderUserScenario on every retail, airline and mock task', () => {
    for (const domain of ['retail', 'airline', 'mock']) {
      for (const t of tasks(domain)) {
        const text = renderUserScenario(t.user_scenario);
        expect(renderUserScenario(parseRenderedScenario(text)), `${domain} ${t.id}`).toBe(text);
      }
    }
  });
});

describeTau2('retail', 'system prompts', () => {
  const guidelinesFile = resolve(tau2DataDir(), 'user_simulator', 'simulation_guidelines.md');

  it('builds {guidelines}\\n\\n<scenario>\\n{scenario}\\n</scenario> from the real guidelines file', () => {
    const guidelines = readFileSync(guidelinesFile, 'utf8');
    const scenario = renderUserScenario(byId('retail', '0').user_scenario);
    const prompt = renderSystemPrompt('tau2', scenario, { guidelines });
    expect(prompt).toBe(`${guidelines}\n\n<scenario>\n${scenario}\n</scenario>`);
    expect(prompt.startsWith('# User Simulation Guidelines')).toBe(true);
    expect(prompt).toContain('###STOP###');
  });

  it('replaces <PERSONA_GUIDELINES> (empty by default)', () => {
    const voice = readFileSync(resolve(tau2DataDir(), 'user_simulator', 'simulation_guidelines_voice.md'), 'utf8');
    expect(voice).toContain(PERSONA_PLACEHOLDER);
    expect(renderTau2SystemPrompt(voice, 's')).not.toContain(PERSONA_PLACEHOLDER);
    expect(renderTau2SystemPrompt(voice, 's', 'Speak slowly.')).toContain('Speak slowly.\nNote: You still need');
  });

  it('offers a τ-bench v1-style prompt with the instruction and the stop rule', () => {
    const p = renderV1SystemPrompt('Cancel order #W1.');
    expect(p).toContain('Cancel order #W1.');
    expect(p).toContain('###STOP###');
    expect(p).toMatch(/one line per turn/);
    expect(renderSystemPrompt('tau-bench-v1', 'x')).toBe(renderV1SystemPrompt('x'));
    expect(() => renderSystemPrompt('tau2', 'x')).toThrow(/guidelines/);
  });
});

describe('parseTaskJson', () => {
  it('names the bad field', () => {
    expect(() => parseTaskJson('{')).toThrow(/task_json: not valid JSON/);
    try {
      parseTaskJson(JSON.stringify({ id: '1', user_scenario: { instructions: { domain: 'x' } } }));
      expect.unreachable();
    } catch (e) {
      expect((e as { code: string }).code).toBe('invalid_argument');
      expect((e as { field: string }).field).toMatch(/^task_json\.user_scenario\.instructions/);
    }
  });
});
