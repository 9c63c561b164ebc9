// A deterministic, rule-based user for tests and the laptop demo: it plays a task's scenario by
// keyword rules, with no model behind it.
//
// Limits (also in README.md): it matches keywords, it does not understand. It opens with the first
// sentence of the reason for call; it reveals a known fact only when the agent's request names it
// (name, user id, zip, email, order id, reservation, address, payment, or a "your <label> is" label);
// it says "yes" to anything that looks like a confirmation request, so it never refuses a wrong
// action; it ignores τ²'s task_instructions (conditional behaviour such as "if the agent refuses,
// insist"); it cannot answer questions about anything not in its facts; it recognises completion only
// by phrases such as "has been cancelled" (or the task's goal_phrases) or the agent's own ###STOP###, and
// stops after `maxIdleTurns` turns in which it had nothing to add. It never emits ###OUT-OF-SCOPE###.

import { ParleyError } from '../core/index.js';
import {
  extractFacts,
  extractUnknown,
  matchKeywords,
  normalize,
  splitSentences,
  toFirstPerson,
  type Fact,
  type UnknownItem,
} from './fact-extraction.js';
import { parseRenderedScenario } from './scenario.js';
import { parleyUserOf, type ParleyUser, type Task, type UserScenario } from './task-schema.js';
import { detectStop, freeUsage, type StartInput, type UserConversation, type UserTurn } from './types.js';

/** Everything the scripted user knows and may say. */
export interface ScriptedProfile {
  opening: string;
  facts: Fact[];
  unknown: UnknownItem[];
  /** Further lines, revealed one at a time when the agent asks an open question or has nothing to ask. */
  details: string[];
  /** Normalized agent phrases meaning "done"; undefined uses the built-in completion cues. */
  goalPhrases?: string[];
  confirmReply: string;
}

export interface ScriptedOptions {
  /** Turns in a row with nothing to reveal or confirm after which the user says ###STOP###. */
  maxIdleTurns: number;
}

const DEFAULT_CONFIRM = 'Yes, please go ahead.';
const STOP_DONE = "Thank you, that's all I needed. ###STOP###";
const STOP_IDLE = "I think that's everything for now. Thanks! ###STOP###";
const TRANSFER = '###TRANSFER###';
const AGENT_STOP = '###STOP###';

function fromParleyUser(p: ParleyUser): ScriptedProfile {
  const facts: Fact[] = Object.entries(p.facts).map(([key, f]) => ({
    key,
    keywords: f.keywords.map(normalize),
    values: Array.isArray(f.value) ? f.value : [f.value],
    all: false,
    phrase: f.phrase ?? `My ${key} is {value}`,
  }));
  const unknown = Object.entries(p.unknown).map(([key, u]) => ({ key, keywords: u.keywords.map(normalize) }));
  return {
    opening: p.opening,
    facts,
    unknown,
    details: p.details,
    goalPhrases: p.goal_phrases?.map(normalize),
    confirmReply: p.confirm_reply ?? DEFAULT_CONFIRM,
  };
}

function fromScenario(scenario: UserScenario): ScriptedProfile {
  const ins = scenario.instructions;
  const structured = typeof ins === 'string' ? undefined : ins;
  const reason = typeof ins === 'string' ? ins : ins.reason_for_call;
  const sentences = splitSentences(reason).map(toFirstPerson);
  const facts =
    structured === undefined
      ? extractFacts(reason)
      : extractFacts(structured.known_info ?? '', `${structured.reason_for_call}\n${structured.task_instructions}`);
  const unknown = extractUnknown(structured?.unknown_info ?? '').filter((u) => !facts.some((f) => f.key === u.key));
  return {
    opening: `Hi! ${sentences[0] ?? 'I need some help, please.'}`,
    facts,
    unknown,
    details: sentences.slice(1),
    confirmReply: DEFAULT_CONFIRM,
  };
}

/**
 * The scripted user's profile for a task: its `parley_user` block when present (used as written),
 * else rules applied to τ²'s user_scenario (structured or a plain string). Never throws.
 */
export function scriptedProfile(task: Task): ScriptedProfile {
  const explicit = parleyUserOf(task);
  return explicit ? fromParleyUser(explicit) : fromScenario(task.user_scenario);
}

/** The profile for a caller that sent only rendered scenario text (no task_json). Never throws. */
export function scriptedProfileFromText(scenarioText: string): ScriptedProfile {
  return fromScenario(parseRenderedScenario(scenarioText));
}

const TRANSFER_CUE =
  /\b(being transferred|transferring you|transferred you|will transfer you|transfer you now|have been transferred|am transferring|im transferring)\b/;
const CONFIRM_CUE =
  /\bconfirm\b|\bproceed\b|\bshall i\b|\bshould i\b|\bwould you like (me )?to\b|\bdo you want (me )?to\b|\byes\/no\b|\(yes\)|\bis (that|this) (correct|right|ok|okay)\b|\bgo ahead\b|\b(ok|okay) to\b|\bdo you agree\b/;
const REQUEST_CUE =
  /\?|\b(please|provide|share|tell me|could you|can you|may i|what is|whats|need|let me know|give me|verify|look up|locate|identify|authenticate)\b/;
const COMPLETION_CUE = new RegExp(
  '\\b(?:(?:has|have) been (?:successfully )?|successfully |(?:is|are) now )' +
    '(?:cancell?ed|exchanged|returned|modified|updated|changed|booked|processed|refunded|completed|created|placed|upgraded|downgraded|submitted|added|removed|issued)\\b' +
    '|\\b(?:youre|you are) all set\\b|\\b(?:is|are) (?:now )?(?:complete|completed|done)\\b',
);
const WH_START = /^(which|what|whats|who|whom|whose|where|when|how)\b/;
/** A yes/no request to go ahead ("Shall I proceed?"), not a wh-question ("Which one would you like to cancel?"). */
const isConfirm = (s: string) => !WH_START.test(s) && CONFIRM_CUE.test(s);
const CONDITIONAL_START = /^(once|if|after|when|before|as soon as|should)\b/;
const ANYTHING_ELSE = /\banything else\b|\bsomething else\b|\bother (questions|requests|issues)\b|\bany other\b/;
const ADDITIONAL_REQUEST = /\b(also|additionally|then|another|as well|second|next)\b/i;

/** One scripted user in one conversation. Deterministic: the same agent messages give the same replies. */
export class ScriptedConversation implements UserConversation {
  private idle = 0;
  private readonly used = new Set<number>();
  private readonly asked = new Map<string, number>();

  constructor(
    private readonly profile: ScriptedProfile,
    private readonly opts: ScriptedOptions = { maxIdleTurns: 2 },
  ) {}

  /** The first message: the pre-generated utterance when given, else the profile's opening. Never rejects. */
  async start(input: StartInput): Promise<UserTurn> {
    return turn(input.firstUtterance || this.profile.opening);
  }

  /** The answer to the agent's text by the rules in this file's header. Rejects only on empty text (invalid_argument). */
  async reply(agentText: string): Promise<UserTurn> {
    if (!agentText.trim()) throw new ParleyError('invalid_argument', 'agent_message.content: empty; the user answers text only', { field: 'agent_message.content' });
    return turn(this.respond(agentText));
  }

  private respond(agentText: string): string {
    const all = normalize(agentText);
    if (TRANSFER_CUE.test(all)) return TRANSFER;
    // The agent's ###STOP### ends nothing by itself (tau2's LLMAgent never stops; MUA-RL reads the stop word
    // in user replies only): it reaches the user as a goodbye, and the user ends the conversation.
    if (agentText.includes(AGENT_STOP)) return STOP_DONE;
    const sentences = splitSentences(agentText).map(normalize);
    const requested = this.requested(sentences);
    if (requested.length) {
      this.idle = 0;
      return requested.join(' ');
    }
    if (this.completed(sentences)) {
      const extra = this.nextDetail((d) => ADDITIONAL_REQUEST.test(d));
      return extra ?? STOP_DONE;
    }
    if (sentences.some(isConfirm)) {
      this.idle = 0;
      return this.profile.confirmReply;
    }
    const detail = this.nextDetail();
    if (detail) {
      this.idle = 0;
      return detail;
    }
    if (ANYTHING_ELSE.test(all)) return STOP_DONE;
    this.idle += 1;
    if (this.idle >= this.opts.maxIdleTurns) return STOP_IDLE;
    return all.includes('?') ? "I'm sorry, I don't know that." : 'Okay.';
  }

  /** What the user says for every fact or unknown item the agent's request names; empty when none. */
  private requested(sentences: string[]): string[] {
    const facts = new Set<Fact>();
    const unknown = new Set<UnknownItem>();
    for (const s of sentences) {
      const confirm = isConfirm(s);
      if (!confirm && !REQUEST_CUE.test(s)) continue;
      // In a confirmation ("please confirm the exchange, paid by credit card") only "your <thing>" asks for a fact.
      const asks = (k: string) => !confirm || s.includes(`your ${k}`);
      for (const f of matchKeywords(s, this.profile.facts)) if (f.keywords.some(asks)) facts.add(f);
      for (const u of matchKeywords(s, this.profile.unknown)) if (u.keywords.some(asks)) unknown.add(u);
    }
    const said = [...facts].map((f) => this.say(f));
    for (const u of unknown) if (![...facts].some((f) => f.key === u.key)) said.push(`I'm sorry, I don't remember my ${u.key}.`);
    return said;
  }

  private say(f: Fact): string {
    const n = this.asked.get(f.key) ?? 0;
    this.asked.set(f.key, n + 1);
    const several = f.all && f.values.length > 1;
    const value = several ? joinAnd(f.values) : f.values[Math.min(n, f.values.length - 1)]!;
    const phrase = several && f.pluralPhrase ? f.pluralPhrase : f.phrase;
    return `${phrase.replace('{value}', value)}.`;
  }

  private completed(sentences: string[]): boolean {
    const goals = this.profile.goalPhrases;
    if (goals) return sentences.some((s) => goals.some((g) => s.includes(g)));
    return sentences.some((s) => !s.includes('?') && !CONDITIONAL_START.test(s) && COMPLETION_CUE.test(s));
  }

  private nextDetail(filter: (d: string) => boolean = () => true): string | undefined {
    const i = this.profile.details.findIndex((d, k) => !this.used.has(k) && filter(d));
    if (i < 0) return undefined;
    this.used.add(i);
    return this.profile.details[i];
  }
}

function joinAnd(values: string[]): string {
  return values.length <= 2 ? values.join(' and ') : `${values.slice(0, -1).join(', ')} and ${values.at(-1)}`;
}

function turn(text: string): UserTurn {
  return { text, stop: detectStop(text), usage: freeUsage(), source: 'scripted', retries: 0 };
}
