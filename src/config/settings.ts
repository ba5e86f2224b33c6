import { type Command, Option } from 'commander';
import { ConfigError } from '../errors.js';

/** The environment as main.ts passes it in (process.env in production, a plain object in tests). */
export type Env = Readonly<Record<string, string | undefined>>;

/** Flag values as commander parsed them, keyed by each option's attribute name. */
export type Flags = Readonly<Record<string, string | boolean | undefined>>;

/**
 * One setting: its flag, its environment variable and its --help line. A table of them per
 * concern, keyed by a name unique across all tables (one reader serves them all). A flag's value
 * is read where commander stores it, under the flag's own attribute name (`--grpc-port` → `grpcPort`).
 */
export interface Spec {
  readonly flag: string;
  readonly env: string;
  readonly help: string;
  /** Shown in --help; undefined means "unset". */
  readonly fallback?: string;
  /** No flag: secrets belong in the environment, not in `ps` output. */
  readonly envOnly?: boolean;
  readonly boolean?: boolean;
  /** An older name of `env`, still read when `env` is unset (kept so existing deployments keep working). */
  readonly aliasEnv?: string;
}

/**
 * Typed access to the settings of keys K. A flag wins over its environment variable, which wins
 * over the default; an empty environment variable counts as unset. Every error names the setting.
 */
export interface SettingsReader<K extends string> {
  readonly raw: (key: K) => string | undefined;
  /** A whole number from min to max; the spec's fallback when unset. */
  readonly int: (key: K, min: number, max: number) => number;
  /** 1/true/yes/on or 0/false/no/off, any case; false when unset. */
  readonly bool: (key: K) => boolean;
  /** How errors name a setting: "--flag / ENV_VAR", or "ENV_VAR" alone when it has no flag. */
  readonly describe: (key: K) => string;
}

/** Builds the one reader of the parsed flags and the environment. */
export function createReader<K extends string>(specs: Readonly<Record<K, Spec>>, flags: Flags, env: Env): SettingsReader<K> {
  const attribute = (spec: Spec): string => new Option(spec.flag).attributeName();
  const describe = (key: K): string => {
    const spec = specs[key];
    const flag = spec.envOnly ? '' : `${spec.flag.split(' ')[0]} / `;
    const alias = spec.aliasEnv === undefined ? '' : ` (or its old name ${spec.aliasEnv})`;
    return `${flag}${spec.env}${alias}`;
  };
  const raw = (key: K): string | undefined => {
    const spec = specs[key];
    if (!spec.envOnly) {
      const flagValue = flags[attribute(spec)];
      if (flagValue !== undefined) return String(flagValue);
    }
    for (const name of [spec.env, spec.aliasEnv]) {
      const envValue = name === undefined ? undefined : env[name];
      if (envValue !== undefined && envValue !== '') return envValue;
    }
    return undefined;
  };
  const int = (key: K, min: number, max: number): number => {
    const value = raw(key) ?? specs[key].fallback!;
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new ConfigError(`${describe(key)} must be a whole number from ${min} to ${max}, got "${value}"`);
    }
    return Number(value);
  };
  const bool = (key: K): boolean => {
    const value = raw(key);
    if (value === undefined) return false;
    if (['1', 'true', 'yes', 'on'].includes(value.toLowerCase())) return true;
    if (['0', 'false', 'no', 'off'].includes(value.toLowerCase())) return false;
    throw new ConfigError(`${describe(key)} must be 1 or 0, got "${value}"`);
  };
  return Object.freeze({ raw, int, bool, describe });
}

/** Adds a table's flags to the command under one --help heading; env-only settings get no flag. */
export function addOptions(command: Command, heading: string, specs: Readonly<Record<string, Spec>>): void {
  for (const spec of Object.values(specs)) {
    if (spec.envOnly) continue;
    const fallback = spec.fallback === undefined ? '' : `; default ${spec.fallback}`;
    const alias = spec.aliasEnv === undefined ? '' : ` or its old name ${spec.aliasEnv}`;
    command.addOption(new Option(spec.flag, `${spec.help} (env ${spec.env}${alias}${fallback})`).helpGroup(heading));
  }
}

/** The --help lines of settings without a flag, which commander cannot list. */
export function envOnlyHelp(specs: Readonly<Record<string, Spec>>): string {
  const lines = Object.values(specs)
    .filter((spec) => spec.envOnly)
    .map((spec) => `  ${spec.env}  ${spec.help}\n`);
  return `\nEnvironment only:\n${lines.join('')}`;
}
