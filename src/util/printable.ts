/**
 * Text from the other side, made safe to print to a terminal. Control characters move the
 * cursor, clear the screen or retitle the window; Unicode bidirectional controls reorder what
 * is shown (`invoice\u202efdp.exe` shows as `invoiceexe.pdf`); zero-width and other invisible
 * format characters make two different texts look the same. All of them are escaped, visibly:
 * C0 and C1 controls as `\xNN` (as the CLI already did), everything else as `\u{XXXX}`.
 *
 * Escaped: every character of general category Cc (controls), Cf (format: U+061C, U+200B-U+200F,
 * U+202A-U+202E, U+2060-U+2064, U+2066-U+2069, U+FEFF, the tag characters...), Zl and Zp (the
 * line and paragraph separators U+2028, U+2029), and lone surrogates. The zero-width joiners
 * U+200C and U+200D are format characters too: an emoji sequence or a Persian word joined by
 * them prints with the joiner escaped. A backslash is not escaped, so an escape in the output
 * and the same characters typed by the sender look alike; what matters here is that nothing
 * stays invisible.
 */

const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

export interface PrintableOptions {
  /** Keep line feeds (`\n`) of multi-line text as they are. Default false: escaped. */
  keepNewlines?: boolean;
}

export function printable(text: string, options: PrintableOptions = {}): string {
  const keepNewlines = options.keepNewlines ?? false;
  return text.replace(UNPRINTABLE, (char) => {
    if (keepNewlines && char === '\n') return char;
    const code = char.codePointAt(0) ?? 0;
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}
