/* schema: JSON Schema -> GBNF (gram.h), for response_format json_schema,
 * json_object, --json-schema and tool-call arguments.
 *
 * The grammar matches JSON text with one spelling per value layout:
 *
 *   whitespace   none, except at most one optional space (" "?) after each
 *                ':' and ',' of objects and arrays; nothing before or after
 *                the document, none after '{' '[' or before '}' ']' (so a
 *                weak model cannot loop in whitespace);
 *   integers     no leading zeros, no "-0", at most 15 digits
 *                (|x| <= 999999999999999, exact in a double); a bound beyond
 *                that widens the limit to 18 digits where it must;
 *   numbers      (type number) unbounded: integer part as above ("-0" too,
 *                for -0.5), fraction up
 *                to 15 digits, exponent [eE][+-]? up to 2 digits; bounded
 *                (any of minimum/maximum/exclusive*): no exponent and at most
 *                15 significant digits, so that parsing into a double cannot
 *                round a number onto or past an exclusive bound (an absent
 *                side is taken as |x| <= 999999999999999);
 *   strings      raw characters except '"', '\' and U+0000..U+001F; the
 *                escapes \" \\ \/ \b \f \n \r \t and \uXXXX except surrogate
 *                halves (so one character of the text is one code point of
 *                the value: minLength/maxLength count exactly); inside
 *                pattern/format/enum/const text and object keys, only raw
 *                characters plus the escapes a character needs;
 *   objects      known properties in the schema's order, required ones
 *                always, optional ones any subset (grammar linear in their
 *                number), then, where additionalProperties allows, extra
 *                "key": value members whose keys differ from the known ones;
 *   enum/const   each value in its schema spelling (object keys in the
 *                schema's order).
 *
 * Supported keywords: type (one or a list), enum, const, properties,
 * required, additionalProperties (true, false or a schema; absent = true),
 * propertyNames (only minLength/maxLength, applied to the extra keys, not
 * checked against the known properties' names), minProperties and
 * maxProperties (only where every listed property is required, or none is
 * listed), items (schema, false, or
 * the draft-7 tuple list with additionalItems), prefixItems, minItems,
 * maxItems, minLength, maxLength (in code points), pattern (ECMAScript
 * regex, search semantics unless anchored with ^ $ (per top-level branch):
 * literals, escapes \d \w \s \D \W \S \xHH \uHHHH \u{H..} \cX, classes,
 * '.', groups (?: ) (?<name> ), '|', * + ? {m} {m,} {m,n} (lazy or not);
 * backreferences, lookaround, \b \B, \p{..} and anchors inside groups are
 * refused), format (date, time and date-time with leap years and a
 * required timezone Z or +hh:mm, fractional seconds up to 3 digits, 'T' as
 * the separator; uuid in lowercase hex; ipv4; other formats, email and uri
 * among them, are refused), minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum (numbers or, draft 4, booleans; exact for integers, and
 * for numbers with integer bounds), anyOf, oneOf (treated as anyOf: a value
 * matching two branches is accepted; sibling keywords are merged into each
 * branch as allOf does), allOf (merged into one schema where the keywords
 * combine exactly: properties (the same name in two members: their allOf),
 * additionalProperties where no member adds a property another forbids,
 * required, bounds, enum, type, and keywords equal in both; else refused),
 * $ref to "#", "#/$defs/..", "#/definitions/..", any local JSON pointer
 * (recursion allowed; siblings of $ref apply, as in 2020-12, merged as
 * allOf), $defs/definitions.
 * A pattern or format together with minLength/maxLength is accepted only
 * where the pattern's or format's own lengths lie within them (else refused
 * in strict mode; not strict, the lengths are dropped); pattern together
 * with format is refused (not strict: the pattern is dropped). Strings,
 * arrays, objects and unbounded numbers get no length limit from the
 * grammar beyond the schema's own keywords.
 * Ignored annotations: title, description, $schema, $id, $comment,
 * examples, default, deprecated, readOnly, writeOnly.
 *
 * Without "type" a schema admits every type, each under its own keywords
 * (as the spec says: {"properties": ..} alone also admits 3 or "x").
 *
 * strict: any other keyword (multipleOf, uniqueItems, contains,
 * patternProperties, dependentRequired, if/then/else,
 * not, contentEncoding, ...), an unsupported regex feature or format, a
 * bound the digit grammar cannot express (a fractional bound of a number, an
 * integer bound beyond 18 digits), an enum/const combined with keywords
 * other than type, or a combination allOf cannot merge exactly is an error.
 * Not strict: those are dropped, which only loosens the grammar (never
 * tightens it wrongly; fractional number bounds are rounded outwards).
 * Always errors: malformed schemas (a keyword's value of the wrong type, a
 * bad regex, minimum > maximum, minLength > maxLength, minItems > maxItems),
 * an unresolvable or non-local $ref, a schema no value can match.
 * Schemas that recurse without consuming text (a $ref loop through anyOf
 * alone) give a left-recursive grammar that gram_parse refuses. */
#ifndef SOV_SCHEMA_H
#define SOV_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>

/* Converts schema (an object or a boolean) into *out: malloc'd GBNF text
 * whose start rule `root` matches the JSON texts valid under it, as above.
 * Errors: SOV_EINVAL with err_msg() "json schema: ..." naming the keyword
 * and its JSON pointer, e.g. "json schema: unsupported keyword
 * 'patternProperties' at #/properties/a"; SOV_ENOMEM. */
int schema_to_gbnf(const json_t *schema, bool strict, char **out);

/* As schema_to_gbnf, but every rule name starts with prefix (letters,
 * digits, '-') and the start rule is named prefix "root", so that several
 * schemas' rules can share one grammar (tool calls). Errors: as above, and
 * SOV_EINVAL for a bad prefix. */
int schema_to_gbnf_rules(const json_t *schema, bool strict, const char *prefix, char **out);

/* The GBNF (static text) of any JSON object, with the whitespace and number
 * rules above: root is an object (response_format json_object). */
const char *schema_json_gbnf(void);

#endif
