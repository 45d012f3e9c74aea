/* Unit tests of JSON Schema -> GBNF (src/grammar/schema.c): each schema's
 * grammar compiles (gram_parse), accepts valid instances whole and rejects
 * instances that break one rule; error cases name the keyword and path. */
#include "t.h"

#include "base/err.h"
#include "grammar/gram.h"
#include "grammar/schema.h"

#include <string.h>

static bool matches(const gram *g, const char *text)
{
    gram_state *st = NULL;
    if (gram_state_new(&st, g))
        return false;
    bool ok = gram_accept_bytes(st, text, strlen(text)) == 0 && gram_can_end(st);
    gram_state_free(st);
    return ok;
}

/* valid and invalid: NULL-terminated lists of instance texts */
static void check(const char *name, const char *schema, bool strict, const char *const *valid,
                  const char *const *invalid)
{
    char tn[256];
    json_error_t je;
    json_t *js = json_loads(schema, JSON_DECODE_ANY, &je);
    if (!t_check(js != NULL, name, "schema does not parse: %s", je.text))
        return;
    char *gb = NULL;
    int rc = schema_to_gbnf(js, strict, &gb);
    json_decref(js);
    snprintf(tn, sizeof tn, "%s: converts", name);
    if (!t_check(rc == 0, tn, "%s", err_msg()))
        return;
    gram *g = NULL;
    snprintf(tn, sizeof tn, "%s: grammar compiles", name);
    rc = gram_parse(&g, gb, strlen(gb));
    if (!t_check(rc == 0, tn, "%s", err_msg())) {
        printf("INFO grammar:\n%s\n", gb);
        free(gb);
        return;
    }
    bool bad = false;
    for (const char *const *v = valid; v && *v; v++) {
        snprintf(tn, sizeof tn, "%s: accepts %.120s", name, *v);
        bad |= !t_check(matches(g, *v), tn, "rejected");
    }
    for (const char *const *v = invalid; v && *v; v++) {
        snprintf(tn, sizeof tn, "%s: rejects %.120s", name, *v);
        bad |= !t_check(!matches(g, *v), tn, "accepted");
    }
    if (bad)
        printf("INFO grammar:\n%s\n", gb);
    gram_free(g);
    free(gb);
}

/* A conversion that must fail, its message containing each of want[]. */
static void check_err(const char *name, const char *schema, bool strict, const char *const *want)
{
    json_error_t je;
    json_t *js = json_loads(schema, JSON_DECODE_ANY, &je);
    if (!t_check(js != NULL, name, "schema does not parse: %s", je.text))
        return;
    char *gb = NULL;
    int rc = schema_to_gbnf(js, strict, &gb);
    json_decref(js);
    bool ok = rc == SOV_EINVAL && !gb;
    for (const char *const *w = want; ok && w && *w; w++)
        ok = strstr(err_msg(), *w) != NULL;
    t_check(ok, name, "rc %d, message '%s'", rc, rc ? err_msg() : "(none)");
    if (gb)
        printf("INFO grammar:\n%s\n", gb);
    free(gb);
}

/* A conversion that must succeed (non-strict drops what it cannot do). */
static void check_ok(const char *name, const char *schema, bool strict)
{
    check(name, schema, strict, NULL, NULL);
}

#define L(...) ((const char *const[]){ __VA_ARGS__, NULL })

int main(void)
{
    check("string", "{\"type\":\"string\"}", true, L("\"\"", "\"abc\"", "\"a\\\"b\"", "\"\\u00e9\\n\"", "\"h\xc3\xa9\""),
          L("abc", "\"a", "\"a\"b\"", "\"\\x\"", "\"\\ud800\"", " \"a\"", "\"a\" ", "\"\x01\"", "3"));
    check("string lengths", "{\"type\":\"string\",\"minLength\":2,\"maxLength\":4}", true,
          L("\"ab\"", "\"abcd\"", "\"\\n\\t\"", "\"\xc3\xa9\xc3\xa9\""), L("\"a\"", "\"abcde\"", "\"\""));
    check("integer", "{\"type\":\"integer\"}", true, L("0", "-7", "123456789012345"),
          L("01", "-0", "1.5", "1e3", "1234567890123456", "\"1\"", "+1"));
    check("integer bounds", "{\"type\":\"integer\",\"minimum\":-12,\"maximum\":305}", true,
          L("-12", "-1", "0", "9", "10", "99", "100", "299", "300", "305"),
          L("-13", "306", "310", "1000", "-100", "400"));
    check("integer exclusive", "{\"type\":\"integer\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":10}", true,
          L("1", "9"), L("0", "10", "-1"));
    check("integer draft4 exclusive", "{\"type\":\"integer\",\"minimum\":5,\"exclusiveMinimum\":true}", true,
          L("6", "999999999999999"), L("5", "4"));
    check("integer big", "{\"type\":\"integer\",\"minimum\":0,\"maximum\":100000000000000000}", true,
          L("0", "100000000000000000", "99999999999999999"), L("100000000000000001", "-1"));
    check("number", "{\"type\":\"number\"}", true, L("0", "-0.5", "1.25", "1e5", "-2.5E-3", "3"),
          L("01", ".5", "1.", "1e", "--1", "1e123"));
    check("number bounds", "{\"type\":\"number\",\"minimum\":0,\"exclusiveMaximum\":1}", true,
          L("0", "0.5", "0.999", "0.0"), L("1", "1.0", "-0.1", "1.5", "-0", "1e-1"));
    check("number negative bounds", "{\"type\":\"number\",\"minimum\":-2,\"maximum\":-1}", true,
          L("-2", "-1.5", "-1", "-1.0", "-2.00"), L("-2.5", "-0.5", "0", "-3", "-2.01"));
    check("number exclusive low", "{\"type\":\"number\",\"exclusiveMinimum\":-1,\"maximum\":1}", true,
          L("-0.5", "0", "1", "-0.001"), L("-1", "-1.0", "1.1"));
    check("boolean/null", "{\"type\":[\"boolean\",\"null\"]}", true, L("true", "false", "null"),
          L("0", "\"true\"", "nul"));
    check("enum", "{\"enum\":[\"red\",\"green\",3,null,{\"a\":[1,2]}]}", true,
          L("\"red\"", "\"green\"", "3", "null", "{\"a\":[1,2]}", "{\"a\": [1, 2]}"),
          L("\"blue\"", "\"re\"", "4", "{\"a\":[1]}"));
    check("enum with type", "{\"type\":\"string\",\"enum\":[\"a\",1]}", true, L("\"a\""), L("1"));
    check("const", "{\"const\":\"x\\\"y\"}", true, L("\"x\\\"y\""), L("\"xy\""));
    check("object", "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"string\"}},"
                    "\"required\":[\"a\"],\"additionalProperties\":false}",
          true, L("{\"a\":1}", "{\"a\": 1, \"b\": \"x\"}", "{\"a\":1,\"b\":\"x\"}"),
          L("{}", "{\"b\":\"x\"}", "{\"a\":\"1\"}", "{\"a\":1,\"c\":2}", "{ \"a\":1}", "{\"a\":1 }", "{\"a\" :1}",
            "{\"a\":  1}", "{\"a\":1,\"b\":\"x\",\"b\":\"y\"}"));
    check("object optional", "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"null\"},\"b\":{\"type\":\"null\"},"
                             "\"c\":{\"type\":\"null\"}},\"additionalProperties\":false}",
          true, L("{}", "{\"a\":null}", "{\"b\":null}", "{\"c\":null}", "{\"a\":null,\"c\":null}",
                  "{\"a\":null,\"b\":null,\"c\":null}"),
          L("{,}", "{\"b\":null,\"a\":null}", "{\"a\":null,}", "{,\"a\":null}"));
    check("object extras",
          "{\"type\":\"object\",\"properties\":{\"ab\":{\"type\":\"integer\"}},\"additionalProperties\":{\"type\":"
          "\"boolean\"}}",
          true, L("{}", "{\"ab\":1}", "{\"ab\":1,\"x\":true}", "{\"a\":false}", "{\"abc\":true,\"\":false}"),
          L("{\"ab\":true}", "{\"x\":1}", "{\"ab\":1,\"x\":2}"));
    check("object extras with propertyNames",
          "{\"type\":\"object\",\"properties\":{\"ab\":{\"type\":\"null\"},\"a\":{\"type\":\"null\"}},"
          "\"propertyNames\":{\"minLength\":1,\"maxLength\":2},\"additionalProperties\":{\"type\":\"integer\"}}",
          true, L("{}", "{\"ab\":null,\"x\":1}", "{\"b\":1}", "{\"ac\":1}", "{\"a\":null,\"xy\":2}"),
          L("{\"ab\":1}", "{\"a\":1}", "{\"\":1}", "{\"xyz\":1}", "{\"abc\":1}"));
    check("maxProperties with extras",
          "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"null\"}},\"required\":[\"a\"],"
          "\"minProperties\":2,\"maxProperties\":3,\"additionalProperties\":{\"type\":\"integer\"}}",
          true, L("{\"a\":null,\"b\":1}", "{\"a\":null,\"b\":1,\"c\":2}"),
          L("{\"a\":null}", "{\"a\":null,\"b\":1,\"c\":2,\"d\":3}"));
    check("maxProperties only extras", "{\"type\":\"object\",\"maxProperties\":1}", true, L("{}", "{\"x\":[]}"),
          L("{\"x\":1,\"y\":2}"));
    check_err("strict: maxProperties with optional properties and extras",
              "{\"type\":\"object\",\"properties\":{\"a\":{}},\"maxProperties\":1}", true, L("maxProperties"));
    check("object any", "{\"type\":\"object\"}", true, L("{}", "{\"x\":[1,{\"y\":null}]}"), L("[]", "{\"x\"}"));
    check("untyped properties", "{\"properties\":{\"a\":{\"type\":\"string\"}}}", true,
          L("3", "\"x\"", "{\"a\":\"s\"}", "[true]"), L("{\"a\":3}"));
    check("array", "{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":1,\"maxItems\":3}", true,
          L("[1]", "[1,2]", "[1, 2, 3]"), L("[]", "[1,2,3,4]", "[\"a\"]", "[ 1]", "[1,]"));
    check("array any", "{\"type\":\"array\"}", true, L("[]", "[1,\"a\",[null]]"), L("[,]"));
    check("prefixItems", "{\"type\":\"array\",\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"integer\"}],"
                         "\"items\":false,\"minItems\":1}",
          true, L("[\"a\"]", "[\"a\",1]"), L("[]", "[1]", "[\"a\",1,2]", "[\"a\",\"b\"]"));
    check("tuple draft7", "{\"type\":\"array\",\"items\":[{\"type\":\"boolean\"}],\"additionalItems\":{\"type\":\"null\"}}",
          true, L("[]", "[true]", "[true,null,null]"), L("[null]", "[true,true]"));
    check("anyOf", "{\"anyOf\":[{\"type\":\"string\",\"maxLength\":2},{\"type\":\"integer\",\"minimum\":0}]}", true,
          L("\"ab\"", "7"), L("\"abc\"", "-1", "null"));
    check("oneOf with siblings",
          "{\"type\":\"object\",\"properties\":{\"k\":{\"type\":\"integer\"}},\"additionalProperties\":false,"
          "\"oneOf\":[{\"required\":[\"k\"]},{\"properties\":{\"k\":{\"maximum\":0}}}]}",
          true, L("{\"k\":5}", "{}", "{\"k\":-3}"), L("{\"j\":1}"));
    check("allOf", "{\"allOf\":[{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]},"
                   "{\"properties\":{\"a\":{\"minimum\":3}}}]}",
          true, L("{\"a\":3}", "{\"a\":4,\"z\":1}"), L("{\"a\":2}", "{}"));
    check("$ref recursive",
          "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},\"kids\":{\"type\":"
          "\"array\",\"items\":{\"$ref\":\"#/$defs/node\"},\"maxItems\":2}},\"required\":[\"v\"],"
          "\"additionalProperties\":false}},\"$ref\":\"#/$defs/node\"}",
          true, L("{\"v\":1}", "{\"v\":1,\"kids\":[{\"v\":2},{\"v\":3,\"kids\":[{\"v\":4}]}]}"),
          L("{\"v\":1,\"kids\":[{}]}", "{\"v\":1,\"kids\":[{\"v\":2},{\"v\":2},{\"v\":2}]}"));
    check("$ref definitions", "{\"definitions\":{\"s\":{\"type\":\"string\",\"maxLength\":1}},\"type\":\"array\","
                              "\"items\":{\"$ref\":\"#/definitions/s\"}}",
          true, L("[\"a\",\"b\"]"), L("[\"ab\"]"));
    check("format date", "{\"type\":\"string\",\"format\":\"date\"}", true,
          L("\"2024-02-29\"", "\"2000-02-29\"", "\"2023-12-31\"", "\"1999-04-30\""),
          L("\"2023-02-29\"", "\"1900-02-29\"", "\"2023-04-31\"", "\"2023-13-01\"", "\"2023-00-10\"", "\"2023-1-01\"",
            "\"2023-01-00\""));
    check("format time", "{\"type\":\"string\",\"format\":\"time\"}", true, L("\"23:59:59Z\"", "\"08:30:00.5+02:00\""),
          L("\"24:00:00Z\"", "\"12:60:00Z\"", "\"12:00:00\""));
    check("format date-time", "{\"type\":\"string\",\"format\":\"date-time\"}", true,
          L("\"2024-01-15T10:20:30Z\"", "\"2024-01-15T10:20:30-05:00\""),
          L("\"2024-01-15T10:20:30\"", "\"2024-01-15 10:20:30Z\""));
    check("format uuid", "{\"type\":\"string\",\"format\":\"uuid\"}", true,
          L("\"123e4567-e89b-12d3-a456-426614174000\""),
          L("\"123e4567-e89b-12d3-a456-42661417400\"", "\"123e4567e89b12d3a456426614174000\"",
            "\"g23e4567-e89b-12d3-a456-426614174000\""));
    check("format ipv4", "{\"type\":\"string\",\"format\":\"ipv4\"}", true, L("\"192.168.0.1\"", "\"0.0.0.0\""),
          L("\"256.1.1.1\"", "\"1.2.3\"", "\"01.2.3.4\""));
    check("pattern anchored", "{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}-\\\\d{3}(x|yz)?$\"}", true,
          L("\"AB-123\"", "\"ZZ-000x\"", "\"QQ-999yz\""), L("\"ab-123\"", "\"AB-12\"", "\"AB-1234\"", "\"AB-123y\""));
    check("pattern search", "{\"type\":\"string\",\"pattern\":\"a+b\"}", true, L("\"ab\"", "\"xxaaab\"", "\"abyy\""),
          L("\"a\"", "\"ba\""));
    check("pattern classes", "{\"type\":\"string\",\"pattern\":\"^[^a-c\\\\s]\\\\w*\\\\.?$\"}", true,
          L("\"d_9.\"", "\"\\\"\"", "\"Z\""), L("\"a\"", "\" x\"", "\"d-\""));
    check("pattern dot and escapes", "{\"type\":\"string\",\"pattern\":\"^.\\\\u0041\\\\x42[\\\\d.]+$\"}", true,
          L("\"\\\\AB1.\"", "\"\xe2\x82\xac" "AB9\""), L("\"\\nAB1\"", "\"AB1\""));
    check("pattern with maxLength", "{\"type\":\"string\",\"pattern\":\"^[a-z]{1,5}$\",\"maxLength\":8}", true,
          L("\"abc\""), L("\"abcdef\""));
    check("json_object rules", "{\"type\":\"object\",\"additionalProperties\":true}", true, L("{\"a\":{}}"), L("[]"));
    check("true schema", "true", true, L("1", "\"s\"", "[{}]"), L("", "x"));
    check("not strict drops", "{\"type\":\"string\",\"maxLength\":3,\"contentEncoding\":\"base64\",\"format\":\"email\"}",
          false, L("\"abc\""), L("\"abcd\""));

    /* schema_json_gbnf */
    {
        gram *g = NULL;
        const char *src = schema_json_gbnf();
        bool ok = gram_parse(&g, src, strlen(src)) == 0;
        t_check(ok, "json_object grammar compiles", "%s", err_msg());
        if (ok) {
            t_check(matches(g, "{\"a\": [1, 2.5, -3e2, true, null, \"x\\u00e9\"], \"b\":{}}"), "json_object accepts",
                    "rejected");
            t_check(!matches(g, "[1]") && !matches(g, "\"x\"") && !matches(g, "{\"a\":1,}") && !matches(g, " {}"),
                    "json_object rejects non-objects", "accepted");
            gram_free(g);
        }
    }
    /* prefixed rules */
    {
        json_t *js = json_loads("{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\",\"maxLength\":3}},"
                                "\"required\":[\"q\"]}",
                                0, NULL);
        char *a = NULL, *b = NULL;
        int r1 = schema_to_gbnf_rules(js, true, "t0-", &a), r2 = schema_to_gbnf_rules(js, true, "t1-", &b);
        bool ok = r1 == 0 && r2 == 0;
        if (ok) {
            size_t n = strlen(a) + strlen(b) + 64;
            char *all = malloc(n);
            snprintf(all, n, "root ::= t0-root \"|\" t1-root\n%s%s", a, b);
            gram *g = NULL;
            ok = gram_parse(&g, all, strlen(all)) == 0;
            t_check(ok, "prefixed rules share one grammar", "%s", err_msg());
            if (ok)
                t_check(matches(g, "{\"q\":\"ab\"}|{\"q\": \"\", \"x\": 1}") && !matches(g, "{\"q\":\"abcd\"}|{}"),
                        "prefixed rules match", "mismatch");
            gram_free(g);
            free(all);
        } else
            t_check(false, "prefixed rules convert", "%s", err_msg());
        char *c = NULL;
        t_check(schema_to_gbnf_rules(js, true, "a b", &c) == SOV_EINVAL && !c, "bad prefix refused", "accepted");
        free(a);
        free(b);
        json_decref(js);
    }

    /* errors */
    check_err("strict: unsupported keyword names keyword and path",
              "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"patternProperties\":{\"x\":{}}}}}",
              true, L("'patternProperties'", "#/properties/a"));
    check_err("strict: contentEncoding", "{\"type\":\"string\",\"contentEncoding\":\"base64\"}", true,
              L("'contentEncoding'", "at #"));
    check_ok("not strict: unsupported keyword ignored",
             "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"patternProperties\":{\"x\":{}}}}}",
             false);
    check_err("strict: unsupported format", "{\"type\":\"string\",\"format\":\"hostname\"}", true, L("hostname"));
    check_err("strict: fractional number bound", "{\"type\":\"number\",\"minimum\":0.5}", true, L("fractional"));
    check_ok("not strict: fractional bound rounded", "{\"type\":\"number\",\"minimum\":0.5,\"maximum\":2.5}", false);
    check_err("unresolvable $ref", "{\"$ref\":\"#/$defs/nope\"}", false, L("$ref", "#/$defs/nope"));
    check_err("non-local $ref", "{\"$ref\":\"http://x/y.json\"}", false, L("non-local"));
    check_err("minimum > maximum", "{\"type\":\"integer\",\"minimum\":5,\"maximum\":1}", false,
              L("'minimum' > 'maximum'", "at #"));
    check_err("minLength > maxLength", "{\"properties\":{\"s\":{\"minLength\":5,\"maxLength\":1}}}", false,
              L("minLength", "#/properties/s"));
    check_err("minItems > maxItems", "{\"minItems\":3,\"maxItems\":1}", false, L("minItems"));
    check_err("bad regex", "{\"type\":\"string\",\"pattern\":\"(ab\"}", false, L("pattern"));
    check_err("strict: backreference", "{\"type\":\"string\",\"pattern\":\"(a)\\\\1\"}", true, L("backreference"));
    check_err("strict: lookahead", "{\"type\":\"string\",\"pattern\":\"a(?=b)\"}", true, L("lookaround"));
    check_err("false schema", "false", false, L("no value"));
    check_err("empty enum after type", "{\"type\":\"string\",\"enum\":[1,2]}", false, L("no value"));
    check_err("wrong keyword type", "{\"type\":\"string\",\"maxLength\":\"3\"}", false, L("maxLength"));
    check_err("unknown type", "{\"type\":\"str\"}", false, L("str"));
    return t_done();
}
