// The registry of sandbox domains: name → loader over a tau2 domain folder.

import type { Domain, DomainLoader } from '../domain.js';
import { deepFreeze } from '../pyjson.js';
import { loadAirlineDomain } from './airline/index.js';
import { loadLocalDomain } from './local/index.js';
import { loadMockDomain } from './mock/index.js';
import { loadRetailDomain } from './retail/index.js';

export const DOMAIN_LOADERS: Record<string, DomainLoader> = {
  retail: loadRetailDomain,
  airline: loadAirlineDomain,
  mock: loadMockDomain,
  local: loadLocalDomain,
};

export const DOMAIN_NAMES = Object.keys(DOMAIN_LOADERS);

/** Loads a domain by name. Throws naming the accepted names on an unknown one, or the file on bad data. */
export function loadDomain(name: string, dataDir: string): Domain {
  const loader = DOMAIN_LOADERS[name];
  if (!loader) throw new Error(`unknown domain '${name}' (accepted: ${DOMAIN_NAMES.join(', ')})`);
  const domain = loader(dataDir);
  // Shared by every session: frozen, so no tool can change it by mistake and its serialization is cached.
  deepFreeze(domain.initialDb);
  deepFreeze(domain.initialUserDb);
  return domain;
}
