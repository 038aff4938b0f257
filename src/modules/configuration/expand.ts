import { expandString } from '../../config/expand';
import type { Json } from '../../protocol/messages';

/**
 * A stored value as readers get it: `${VAR}` and `${VAR:default}` inside strings expanded against
 * the live environment (keys are left alone). A variable that is unset and has no default leaves
 * its placeholder as written. Strings stay strings: `"${PORT:3000}"` reads as `"3000"`.
 */
export function expandValue(value: Json, env: NodeJS.ProcessEnv = process.env): Json {
  if (typeof value === 'string') return value.includes('${') ? expandText(value, env) : value;
  if (Array.isArray(value)) return value.map((item) => expandValue(item, env));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, Json> = {};
    for (const [key, item] of Object.entries(value)) out[key] = expandValue(item, env);
    return out;
  }
  return value;
}

function expandText(text: string, env: NodeJS.ProcessEnv): string {
  try {
    return expandString(text, env, { file: 'configuration', path: '' });
  } catch {
    // One unset variable: expand the others one placeholder at a time.
    return text.replace(/\$\{[^}]*\}/g, (placeholder) => {
      try {
        return expandString(placeholder, env, { file: 'configuration', path: '' });
      } catch {
        return placeholder;
      }
    });
  }
}
