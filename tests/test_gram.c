/* Grammar engine (src/grammar): GBNF accept/reject tables, parse errors
 * with their positions, UTF-8 edge cases, tokens across rule boundaries,
 * bounded memory, and gram_mask against a brute-force reference (every
 * token's piece tried on a copy of the state) on real vocabularies along
 * random walks, plus the mask's speed. */
#include "t.h"

#include "base/err.h"
#include "format/gguf.h"
#include "grammar/gram.h"
#include "tok/vocab.h"

#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: steadier on a busy machine */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static bool sanitized(void)
{
    const char *s = getenv("SOV_SANITIZED");
    return s && *s && strcmp(s, "0") != 0;
}

static gram *compile(const char *src)
{
    gram *g = NULL;
    if (gram_parse(&g, src, strlen(src)) != 0)
        return NULL;
    return g;
}

/* 1: text is a whole sentence; 0: some byte refused; 2: accepted as a
 * prefix only (cannot end there). */
static int match(const gram *g, const char *text, size_t n)
{
    gram_state *s = NULL;
    if (gram_state_new(&s, g) != 0)
        return -1;
    int r = gram_accept_bytes(s, text, n) != 0 ? 0 : gram_can_end(s) ? 1 : 2;
    gram_state_free(s);
    return r;
}

typedef struct {
    const char *name;
    const char *src;
    const char *yes[14]; /* whole sentences */
    const char *no[14];  /* not sentences (refused or incomplete) */
} gcase;

static const char *JSON =
    "# JSON (RFC 8259), whitespace where it may go\n"
    "root    ::= ws value ws\n"
    "value   ::= object | array | string | number | \"true\" | \"false\" | \"null\"\n"
    "object  ::= \"{\" ws ( member ( ws \",\" ws member )* ws )? \"}\"\n"
    "member  ::= string ws \":\" ws value\n"
    "array   ::= \"[\" ws ( value ( ws \",\" ws value )* ws )? \"]\"\n"
    "string  ::= \"\\\"\" char* \"\\\"\"\n"
    "char    ::= [^\"\\\\\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} )\n"
    "number  ::= \"-\"? ( \"0\" | [1-9] [0-9]* ) ( \".\" [0-9]+ )? ( [eE] [-+]? [0-9]+ )?\n"
    "ws      ::= [ \\t\\n\\r]*\n";

static const gcase CASES[] = {
    {"literal", "root ::= \"abc\"", {"abc"}, {"", "ab", "abcd", "abd", "ABC"}},
    {"literal escapes", "root ::= \"\\n\\r\\t\\\\\\\"\\'\\[\\]\\x41\\u00e9\\U0001F600\"",
     {"\n\r\t\\\"'[]A\xc3\xa9\xf0\x9f\x98\x80"}, {"\n\r\t\\\"'[]A\xc3\xa9", "nrt"}},
    {"empty literal", "root ::= \"\" \"a\" \"\"", {"a"}, {"", "aa"}},
    {"class", "root ::= [a-c0-9_]", {"a", "b", "c", "0", "9", "_"}, {"d", "", "ab", "-", "A"}},
    {"class dash and bracket", "root ::= [-a\\]z-]+", {"-", "a", "]", "z", "-a]z-"}, {"b", "[", ""}},
    {"negated class", "root ::= [^a-z\"\\\\]", {"A", "\xc3\xa9", "\xf0\x9f\x98\x80", "\x01", "{"},
     {"a", "m", "\"", "\\", "", "AB"}},
    {"dot", "root ::= . .", {"ab", "\xc3\xa9\xf0\x9f\x98\x80", "  "}, {"a", "abc", ""}},
    {"alternation", "root ::= \"cat\" | \"dog\" | \"c\"", {"cat", "dog", "c"}, {"ca", "cow", "catdog", ""}},
    {"groups", "root ::= (\"a\" | \"b\") \"c\" (\"d\" (\"e\" | \"f\"))", {"acde", "bcdf"},
     {"acd", "abde", "cde", "acdef"}},
    {"star", "root ::= \"a\"* \"b\"", {"b", "ab", "aaaab"}, {"", "a", "ba", "abb"}},
    {"plus", "root ::= (\"ab\")+", {"ab", "abab", "ababab"}, {"", "a", "aba", "ba"}},
    {"plus on a literal", "root ::= \"ab\"+ \"!\"", {"ab!", "abab!"}, {"!", "aab!", "abb!"}},
    {"optional", "root ::= \"x\"? \"y\"", {"y", "xy"}, {"xxy", "x", "", "yx"}},
    {"repeat {m}", "root ::= [0-9]{3}", {"123", "000"}, {"12", "1234", "", "12a"}},
    {"repeat {m,}", "root ::= \"a\"{2,}", {"aa", "aaa", "aaaaaaa"}, {"a", "", "aab"}},
    {"repeat {m,n}", "root ::= \"ab\"{1,3}", {"ab", "abab", "ababab"}, {"", "abababab", "aba"}},
    {"repeat {0,n} of a group", "root ::= (\"x\" [0-9]){0,2} \".\"", {".", "x1.", "x1x2."},
     {"x1x2x3.", "x.", "1."}},
    {"repeat {m,n} of a long literal", "root ::= \"abc\"{2,4}", {"abcabc", "abcabcabc", "abcabcabcabc"},
     {"abc", "abcabcabcabcabc", "abcab"}},
    {"repeat {0}", "root ::= \"a\"{0} \"b\"", {"b"}, {"ab", ""}},
    {"repeat with spaces", "root ::= \"a\" { 1 , 2 } \"b\" *", {"a", "aa", "abbb"}, {"aaa", "b"}},
    {"balanced parentheses", "root ::= p+\np ::= \"(\" p* \")\"", {"()", "()()", "(()(()))", "((((()))))"},
     {"(", ")(", "(()", "", "())"}},
    {"nested lists", "root ::= v\nv ::= \"[\" (v (\",\" v)*)? \"]\" | [0-9]+", {"[]", "[1,[2,3],[]]", "42", "[[[[]]]]"},
     {"[1,]", "[", "[1 2]", "[,]", "]"}},
    {"nullable rules", "root ::= a b c \"!\"\na ::= \"a\"?\nb ::= | \"b\"\nc ::= a b",
     {"!", "a!", "ab!", "abab!", "b!", "aa!", "bb!", "abb!"}, {"aaa!", "bbb!", "", "aba!c"}},
    {"empty alternative", "root ::= \"x\" | ", {"", "x"}, {"xx", "y"}},
    {"empty first alternative", "root ::= | \"a\" | \"b\"", {"", "a", "b"}, {"ab"}},
    {"empty rule", "root ::=", {""}, {"a"}},
    {"empty group", "root ::= () \"a\" ()?", {"a"}, {""}},
    {"right recursion", "root ::= \"[\" ws \"]\"\nws ::= \" \" ws | ", {"[]", "[ ]", "[      ]"}, {"[", "[ x]", " []"}},
    {"comments and multi-line rules",
     "# a comment line\n"
     "root ::= greeting # a trailing comment\n"
     "   \" \" name\n"
     "\n"
     "greeting ::= \"hello\"\n"
     "  | \"hi\"   # an alternative on the next line\n"
     "name ::= (\n"
     "   [a-z]+   # inside parentheses\n"
     "   [0-9]*\n"
     ")\n",
     {"hello bob", "hi x9", "hello a123"}, {"hello", "hey bob", "hi 9", "hello bob!"}},
    {"crlf and tabs", "root ::=\t\"a\"\r\n\t| b\r\nb ::= \"b\"\r\n", {"a", "b"}, {"ab", ""}},
    {"rule defined after use", "root ::= x y\ny ::= \"2\"\nx ::= \"1\"", {"12"}, {"1", "21"}},
    {"names with digits, dash, underscore", "root ::= a-1 b_2\na-1 ::= \"a\"\nb_2 ::= \"b\"", {"ab"}, {"a"}},
    {"cyrillic range", "root ::= [а-я]+", {"привет", "я"}, {"hello", "пРивет", ""}},
    {"emoji ranges", "root ::= [\\U0001F600-\\U0001F64F] [😀-🙏]*", {"😀", "🙏😀", "😃🙏🙏"}, {"🚀", "😀🚀", ""}},
    {"multi-byte literal", "root ::= \"€uro\" | \"ĳ\"", {"€uro", "ĳ"}, {"€", "euro", "ij"}},
    {"ambiguous nullables (no blow-up)",
     "root ::= x x x x x x x x x x x x x x x x x x x x x x x x \"z\"\nx ::= y | y | y\ny ::= \"a\" | ",
     {"z", "aaaz", "aaaaaaaaaaaaaaaaaaaaaaaaz"}, {"aaaaaaaaaaaaaaaaaaaaaaaaaz", ""}},
    {"json", NULL,
     {"{}", "{\"a\":1}", " [ ] ", "\"\\u12aB\"", "-0.5", "12E+7", "true",
      "{\"a\": [1, 2.5e-3, \"x\\\"y\\u00e9\", true, null], \"b\": {\"c\": {}}}", "[\"é\", \"😀\"]",
      "{\n  \"k\" : \"v\" ,\n  \"n\":[0]\n}\n"},
     {"{\"a\"}", "{\"a\":1,}", "[1 2]", "\"\\x\"", "01", "\"abc", "{'a':1}", "\"\\u12G4\"", "tru", "1.",
      "\"\x01\"", "[1,,2]", "{\"a\" 1}"}},
};

static void tables(void)
{
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++) {
        const gcase *c = &CASES[k];
        char name[160];
        snprintf(name, sizeof name, "gram %s", c->name);
        gram *g = compile(c->src ? c->src : JSON);
        if (!t_check(g != NULL, name, "parse: %s", err_msg()))
            continue;
        char why[300] = "";
        bool ok = true;
        int n_yes = 0, n_no = 0;
        for (int i = 0; i < 14 && c->yes[i]; i++, n_yes++) {
            int r = match(g, c->yes[i], strlen(c->yes[i]));
            if (r != 1 && ok) {
                ok = false;
                snprintf(why, sizeof why, "\"%s\" should match, got %d (%s)", c->yes[i], r, err_msg());
            }
            /* the same text split in two at every byte */
            size_t n = strlen(c->yes[i]);
            for (size_t cut = 1; cut < n && ok; cut++) {
                gram_state *s = NULL;
                gram_state_new(&s, g);
                bool whole = s && gram_accept_bytes(s, c->yes[i], cut) == 0 &&
                             gram_accept_bytes(s, c->yes[i] + cut, n - cut) == 0 && gram_can_end(s);
                if (!whole) {
                    ok = false;
                    snprintf(why, sizeof why, "\"%s\" split at %zu does not match", c->yes[i], cut);
                }
                gram_state_free(s);
            }
        }
        for (int i = 0; i < 14 && c->no[i]; i++, n_no++) {
            int r = match(g, c->no[i], strlen(c->no[i]));
            if (r == 1 && ok) {
                ok = false;
                snprintf(why, sizeof why, "\"%s\" should not match", c->no[i]);
            }
        }
        snprintf(name, sizeof name, "gram %s: %d accepted, %d refused (%d rules)", c->name, n_yes, n_no,
                 gram_n_rules(g));
        t_check(ok, name, "%s", why);
        gram_free(g);
    }
}

typedef struct {
    const char *src;
    const char *msg; /* expected in err_msg() */
} ecase;

static const ecase ERRORS[] = {
    {"root ::= \"abc", "grammar 1:10: unterminated literal"},
    {"root ::= \"a\"\nx ::= [abc", "grammar 2:7: unterminated character class"},
    {"root ::= foo", "grammar 1:10: undefined rule 'foo'"},
    {"root ::= a\na ::= \"x\" b", "grammar 2:11: undefined rule 'b'"},
    {"a ::= \"x\"", "grammar 1:1: missing root rule"},
    {"", "grammar 1:1: missing root rule"},
    {"root ::= root \"a\" | \"b\"", "grammar 1:10: left recursion: rule 'root'"},
    {"root ::= a\na ::= b \"x\"\nb ::= c | a \"y\"\nc ::= \"z\"", "grammar 3:11: left recursion: rule 'a'"},
    {"root ::= n root \"x\" | \"y\"\nn ::= \"a\"?", "grammar 1:12: left recursion: rule 'root'"},
    {"root ::= (\"a\"?)*", "grammar 1:16: left recursion"},
    {"root ::= x\nx ::= \"\" x", "grammar 2:10: left recursion: rule 'x'"},
    {"root ::= \"a\"{3,2}", "grammar 1:13: bad repetition bounds {3,2}"},
    {"root ::= \"a\"{x}", "grammar 1:13: expected a number"},
    {"root ::= \"a\"{2", "grammar 1:13: expected '}'"},
    {"root ::= \"a\"{200000}", "grammar 1:13: repetition bound over"},
    {"root ::= *\"a\"", "grammar 1:10: '*' without an element"},
    {"root ::= []", "grammar 1:10: empty character class"},
    {"root ::= [^\\x00-\\U0010FFFF]", "grammar 1:10: empty character class"},
    {"root ::= [z-a]", "grammar 1:12: bad range"},
    {"root ::= (\"a\" | \"b\"", "grammar 1:10: unclosed '('"},
    {"root ::= (\"a\"\nb ::= \"c\"", "grammar 1:10: unclosed '('"},
    {"root ::= \"a\" )", "grammar 1:14: unexpected ')'"},
    {"root ::= \"\\q\"", "grammar 1:11: unknown escape '\\q'"},
    {"root ::= \"\\x4\"", "grammar 1:11: '\\x' needs 2 hex digits"},
    {"root ::= \"\\U00110000\"", "grammar 1:11: code point U+110000"},
    {"root ::= \"\xff\"", "grammar 1:11: invalid UTF-8"},
    {"root ::= \"a\"\nroot ::= \"b\"", "grammar 2:1: rule 'root' defined twice"},
    {"root \"a\"", "grammar 1:6: expected '::='"},
    {"root ::= \"a\" ::= \"b\"", "grammar 1:14: unexpected '::='"},
    {"root ::= \"a\" @", "grammar 1:14: unexpected character '@'"},
    {"  ::= \"a\"", "grammar 1:3: expected a rule name"},
    {"# only\n# comments\n  root ::= (\n \"é\" \"ü\" | \"x\" [\n", "grammar 4:16: unterminated character class"},
};

static void errors(void)
{
    for (size_t k = 0; k < sizeof ERRORS / sizeof ERRORS[0]; k++) {
        const ecase *e = &ERRORS[k];
        gram *g = NULL;
        int rc = gram_parse(&g, e->src, strlen(e->src));
        char name[200];
        snprintf(name, sizeof name, "gram error: %s", e->msg);
        t_check(rc == SOV_EINVAL && g == NULL && strstr(err_msg(), e->msg) == err_msg(), name, "rc %d, \"%s\"", rc,
                err_msg());
        gram_free(g);
    }
    /* a rule whose name is a prefix of another, and an unused undefined-free rule with left recursion */
    gram *g = NULL;
    const char *src = "root ::= \"a\"\nunused ::= unused \"b\"";
    int rc = gram_parse(&g, src, strlen(src));
    t_check(rc == SOV_EINVAL && strstr(err_msg(), "left recursion"), "gram error: left recursion in an unused rule",
            "rc %d %s", rc, err_msg());
    gram_free(g);
    src = "root ::= ab\nab ::= a\na ::= \"x\"";
    rc = gram_parse(&g, src, strlen(src));
    t_check(rc == 0 && g && match(g, "x", 1) == 1, "gram names that are prefixes of others", "%s", err_msg());
    gram_free(g);
    /* a grammar may stop at any byte, not at a NUL */
    rc = gram_parse(&g, "root ::= \"a\" junk", 12);
    t_check(rc == 0 && g && match(g, "a", 1) == 1, "gram source length honoured", "%s", err_msg());
    gram_free(g);
    rc = gram_parse(&g, "root ::= \"a\\x00b\"", 17);
    t_check(rc == 0 && g && match(g, "a\0b", 3) == 1 && match(g, "a", 1) == 2, "gram NUL character", "%s",
            err_msg());
    gram_free(g);
    g = compile("root ::= \"a\"* \"b\"+");
    t_check(g && gram_n_rules(g) == 3, "gram_n_rules counts generated rules", "%d", g ? gram_n_rules(g) : -1);
    gram_free(g);
}

static void utf8(void)
{
    gram *g = compile("root ::= [а-я]+");
    gram_state *s = NULL;
    bool ok = g && gram_state_new(&s, g) == 0;
    /* п = D0 BF split across calls */
    ok = ok && gram_accept_bytes(s, "\xd0", 1) == 0 && !gram_can_end(s) && !gram_done(s);
    ok = ok && gram_accept_bytes(s, "\xbf", 1) == 0 && gram_can_end(s);
    t_check(ok, "gram utf8: a character split across two calls", "%s", err_msg());
    /* a partial character at the end cannot end; an ASCII byte cannot complete it */
    ok = s && gram_accept_bytes(s, "\xd1", 1) == 0 && !gram_can_end(s);
    ok = ok && gram_accept_bytes(s, "a", 1) == SOV_EINVAL && !gram_can_end(s);
    ok = ok && gram_accept_bytes(s, "\x8f", 1) == 0 && gram_can_end(s); /* я */
    t_check(ok, "gram utf8: partial character at the end: cannot end", "%s", err_msg());
    gram_state_free(s);
    s = NULL;
    /* a lead byte whose characters are all outside the class is refused at once */
    ok = g && gram_state_new(&s, g) == 0;
    ok = ok && gram_accept_bytes(s, "\xd2", 1) == SOV_EINVAL && gram_accept_bytes(s, "\xc3", 1) == SOV_EINVAL &&
         gram_accept_bytes(s, "\xd0", 1) == 0 && gram_accept_bytes(s, "\x80", 1) == SOV_EINVAL /* Ѐ U+0400 */;
    t_check(ok, "gram utf8: lead bytes pruned by the interval they can still reach", "%s", err_msg());
    gram_state_free(s);
    gram_free(g);

    g = compile("root ::= .*");
    static const struct {
        const char *b;
        size_t n;
        const char *what;
    } bad[] = {
        {"\x80", 1, "stray continuation byte"},
        {"\xbf", 1, "stray continuation byte BF"},
        {"\xc0\x80", 2, "overlong C0"},
        {"\xc1\xbf", 2, "overlong C1"},
        {"\xe0\x80\x80", 3, "overlong E0 80"},
        {"\xe0\x9f\xbf", 3, "overlong E0 9F"},
        {"\xf0\x80\x80\x80", 4, "overlong F0 80"},
        {"\xf0\x8f\xbf\xbf", 4, "overlong F0 8F"},
        {"\xed\xa0\x80", 3, "surrogate D800"},
        {"\xed\xbf\xbf", 3, "surrogate DFFF"},
        {"\xf4\x90\x80\x80", 4, "beyond U+10FFFF"},
        {"\xf5\x80\x80\x80", 4, "lead F5"},
        {"\xf8\x88\x80\x80\x80", 5, "lead F8"},
        {"\xff", 1, "byte FF"},
        {"\xc3" "a", 2, "lead then ASCII"},
        {"\xe2\x82" "a", 3, "two bytes then ASCII"},
        {"\xe2\x82\xe2", 3, "lead inside a character"},
    };
    for (size_t k = 0; g && k < sizeof bad / sizeof bad[0]; k++) {
        char name[120];
        snprintf(name, sizeof name, "gram utf8 refused: %s", bad[k].what);
        s = NULL;
        ok = gram_state_new(&s, g) == 0 && gram_accept_bytes(s, "ok", 2) == 0;
        int rc = ok ? gram_accept_bytes(s, bad[k].b, bad[k].n) : -99;
        /* refused as a whole, state unchanged: it goes on from "ok" */
        ok = ok && rc == SOV_EINVAL && gram_can_end(s) && gram_accept_bytes(s, "\xe2\x82\xac", 3) == 0 &&
             gram_can_end(s);
        t_check(ok, name, "rc %d %s", rc, err_msg());
        gram_state_free(s);
    }
    static const struct {
        const char *b;
        size_t n;
    } good[] = {{"\x7f", 1}, {"\xc2\x80", 2}, {"\xdf\xbf", 2}, {"\xe0\xa0\x80", 3}, {"\xed\x9f\xbf", 3},
                {"\xee\x80\x80", 3}, {"\xef\xbf\xbf", 3}, {"\xf0\x90\x80\x80", 4}, {"\xf4\x8f\xbf\xbf", 4}};
    ok = g != NULL;
    for (size_t k = 0; ok && k < sizeof good / sizeof good[0]; k++)
        ok = match(g, good[k].b, good[k].n) == 1;
    t_check(ok, "gram utf8: boundary code points accepted (U+7F U+80 U+7FF U+800 U+D7FF U+E000 U+FFFF U+10000 U+10FFFF)",
            "%s", err_msg());
    /* partial at the end of .*: not a sentence yet */
    s = NULL;
    ok = g && gram_state_new(&s, g) == 0 && gram_accept_bytes(s, "\xe2\x82", 2) == 0 && !gram_can_end(s) &&
         !gram_done(s) && gram_accept_bytes(s, "\xac", 1) == 0 && gram_can_end(s);
    t_check(ok, "gram utf8: \"\\xe2\\x82\" pending, then \\xac completes €", "%s", err_msg());
    gram_state_free(s);
    gram_free(g);

    /* only the class's characters: a pending character keeps stacks whose
     * class meets what it can still become */
    g = compile("root ::= \"é\" \"1\" | \"ф\" \"2\" | [\\U0001F600-\\U0001F64F] \"3\"");
    ok = g && match(g, "é1", 3) == 1 && match(g, "ф2", 3) == 1 && match(g, "é2", 3) == 0 &&
         match(g, "\xf0\x9f\x98\x80" "3", 5) == 1 && match(g, "\xf0\x9f\x9a", 3) == 0 &&
         match(g, "\xf0\x9f\x98", 3) == 2 && match(g, "\xf0\x9e", 2) == 0;
    t_check(ok, "gram utf8: pending characters pruned per alternative", "%s", err_msg());
    gram_free(g);
}

static void states(void)
{
    gram *g = compile("root ::= \"ab\"");
    gram_state *s = NULL, *c = NULL;
    bool ok = g && gram_state_new(&s, g) == 0 && !gram_done(s) && !gram_can_end(s) &&
              gram_accept_bytes(s, "a", 1) == 0 && !gram_done(s) && gram_accept_bytes(s, "b", 1) == 0 &&
              gram_done(s) && gram_can_end(s) && gram_accept_bytes(s, "b", 1) == SOV_EINVAL && gram_done(s);
    t_check(ok, "gram_done after the last character of a finite grammar", "%s", err_msg());
    gram_state_free(s);
    gram_free(g);

    g = compile("root ::= \"a\"+");
    s = NULL;
    ok = g && gram_state_new(&s, g) == 0 && gram_accept_bytes(s, "a", 1) == 0 && !gram_done(s) && gram_can_end(s);
    t_check(ok, "gram_done false while more may follow", "%s", err_msg());
    gram_state_free(s);
    gram_free(g);

    g = compile(JSON);
    s = NULL;
    ok = g && gram_state_new(&s, g) == 0 && gram_accept_bytes(s, "{\"ab", 4) == 0 && gram_state_clone(&c, s) == 0;
    ok = ok && gram_accept_bytes(c, "\": 1}", 5) == 0 && gram_can_end(c) && !gram_can_end(s);
    ok = ok && gram_accept_bytes(s, "c\":[]}", 6) == 0 && gram_can_end(s);
    t_check(ok, "gram_state_clone is independent", "%s", err_msg());
    gram_state_free(s);
    gram_state_free(c);
    /* tokens across rule boundaries: one call that closes a string, passes
     * the separator and starts the value */
    s = NULL;
    ok = g && gram_state_new(&s, g) == 0 && gram_accept_bytes(s, "{\"a", 3) == 0 &&
         gram_accept_bytes(s, "\":", 2) == 0 && gram_accept_bytes(s, ",", 1) == SOV_EINVAL &&
         gram_accept_bytes(s, " [\"", 3) == 0 && gram_accept_bytes(s, "x\"],\"", 5) == 0 &&
         gram_accept_bytes(s, "b\":0}", 5) == 0 && gram_can_end(s);
    t_check(ok, "gram pieces spanning rule boundaries (\\\":, \\\"],\\\")", "%s", err_msg());
    gram_state_free(s);
    gram_free(g);

    /* deep nesting: no recursion on the C stack, and back out */
    g = compile("root ::= p\np ::= \"(\" p? \")\"");
    s = NULL;
    int depth = sanitized() ? 20000 : 200000;
    char *buf = malloc((size_t)depth);
    ok = g && buf && gram_state_new(&s, g) == 0;
    if (ok) {
        memset(buf, '(', (size_t)depth);
        ok = gram_accept_bytes(s, buf, (size_t)depth) == 0 && !gram_can_end(s);
        memset(buf, ')', (size_t)depth);
        ok = ok && gram_accept_bytes(s, buf, (size_t)depth - 1) == 0 && !gram_can_end(s) &&
             gram_accept_bytes(s, ")", 1) == 0 && gram_done(s);
    }
    t_check(ok, "gram nesting 200000 deep and back", "%s", err_msg());
    gram_state_free(s);
    gram_free(g);
    free(buf);

    /* nullable frames: after the innermost, every open level may close */
    g = compile("root ::= a\na ::= \"(\" a b | \"x\"\nb ::= \")\" | ");
    s = NULL;
    ok = g && gram_state_new(&s, g) == 0;
    for (int i = 0; ok && i < 2000; i++)
        ok = gram_accept_bytes(s, "(", 1) == 0;
    ok = ok && gram_accept_bytes(s, "x", 1) == 0 && gram_can_end(s);
    for (int i = 0; ok && i < 2000; i++)
        ok = gram_accept_bytes(s, ")", 1) == 0 && gram_can_end(s);
    ok = ok && gram_accept_bytes(s, ")", 1) == SOV_EINVAL && gram_done(s);
    t_check(ok, "gram 2000 nullable frames pop in one step", "%s", err_msg());
    gram_state_free(s);
    gram_free(g);

    /* memory stays bounded over a long generation: deep nesting with a
     * different mix of arrays and objects each round leaves dead stacks */
    g = compile(JSON);
    s = NULL;
    ok = g && gram_state_new(&s, g) == 0 && gram_accept_bytes(s, "[", 1) == 0;
    size_t mem2 = 0, mem_end = 0, mem_max = 0;
    int rounds = sanitized() ? 4 : 30, deep = 3000;
    char *close = malloc((size_t)deep);
    ok = ok && close;
    uint64_t h = 12345;
    for (int r = 0; ok && r < rounds; r++) {
        for (int d = 0; ok && d < deep; d++) {
            h = h * 6364136223846793005ull + 1442695040888963407ull;
            bool arr = (h >> 33) & 1;
            ok = arr ? gram_accept_bytes(s, "[", 1) == 0 : gram_accept_bytes(s, "{\"k\":", 5) == 0;
            close[d] = arr ? ']' : '}';
        }
        ok = ok && gram_accept_bytes(s, "0", 1) == 0;
        for (int d = deep; ok && d-- > 0;)
            ok = gram_accept_bytes(s, &close[d], 1) == 0;
        ok = ok && gram_accept_bytes(s, ",\"", 2) == 0;
        for (int d = 0; ok && d < 3000; d++)
            ok = gram_accept_bytes(s, "text ", 5) == 0;
        ok = ok && gram_accept_bytes(s, "\",", 2) == 0;
        struct mallinfo2 mi = mallinfo2();
        if (r == 1)
            mem2 = mi.uordblks;
        if (mi.uordblks > mem_max)
            mem_max = mi.uordblks;
        mem_end = mi.uordblks;
    }
    ok = ok && gram_accept_bytes(s, "0]", 2) == 0 && gram_can_end(s);
    if (mem2)
        printf("INFO gram memory over %d rounds of %d-deep nesting: heap %zu KiB after round 2, %zu at most, %zu at "
               "the end\n",
               rounds, deep, mem2 >> 10, mem_max >> 10, mem_end >> 10);
    else
        printf("INFO gram memory: heap use not measurable here (mallinfo2 reports 0 under the sanitizer)\n");
    t_check(ok && mem_max <= mem2 + (4u << 20), "gram memory bounded over a long generation",
            "ok %d, heap in use after round 2: %zu, at most: %zu (%s)", ok, mem2, mem_max, err_msg());
    free(close);
    gram_state_free(s);
    gram_free(g);
}

/* ---- gram_mask against the brute-force reference ---- */

typedef struct {
    const char *rel;
    gguf *gg;
    vocab *v;
    gram_vocab *tv;
} tvoc;

static bool open_vocab(tvoc *t, const char *rel)
{
    memset(t, 0, sizeof *t);
    t->rel = rel;
    char name[200];
    snprintf(name, sizeof name, "gram vocab %s", rel);
    if (!t_check(gguf_open(&t->gg, t_shared(rel)) == 0 && vocab_load(&t->v, t->gg) == 0 &&
                     gram_vocab_new(&t->tv, t->v) == 0,
                 name, "%s", err_msg()))
        return false;
    return true;
}

static void close_vocab(tvoc *t)
{
    gram_vocab_free(t->tv);
    vocab_free(t->v);
    gguf_close(t->gg);
    memset(t, 0, sizeof *t);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* ref[t] = whether token t may follow in s after prev, by trying its piece
 * on a copy of s. Returns the count, -1 on error. */
static int reference(const gram_state *s, const vocab *v, int32_t prev, uint8_t *ref)
{
    char buf[4096];
    int32_t n = vocab_n_tokens(v);
    int count = 0;
    for (int32_t t = 0; t < n; t++) {
        ref[t] = 0;
        if (vocab_is_eog(v, t)) {
            ref[t] = gram_can_end(s);
        } else {
            int len = vocab_piece(v, prev, t, buf, sizeof buf);
            if (len < 0 || len > (int)sizeof buf)
                return -1;
            if (len > 0) {
                gram_state *c = NULL;
                if (gram_state_clone(&c, s) != 0)
                    return -1;
                ref[t] = gram_accept_bytes(c, buf, (size_t)len) == 0;
                gram_state_free(c);
            }
        }
        count += ref[t];
    }
    return count;
}

static long total_states, total_tokens;

static void mask_vs_reference(tvoc *tv, const char *gname, const char *src, int n_states, int max_len,
                              uint64_t seed)
{
    char name[300];
    snprintf(name, sizeof name, "gram mask == reference: %s, %s", tv->rel, gname);
    gram *g = compile(src);
    if (!t_check(g != NULL, name, "parse: %s", err_msg()))
        return;
    int32_t n = vocab_n_tokens(tv->v), bos = vocab_bos(tv->v);
    uint8_t *allowed = malloc((size_t)n), *ref = malloc((size_t)n), *again = malloc((size_t)n);
    int32_t *pick = malloc((size_t)n * sizeof *pick), *pick1 = malloc((size_t)n * sizeof *pick1);
    char why[400] = "";
    bool ok = allowed && ref && again && pick && pick1;
    int states = 0, walks = 0, partial = 0, at_start_bos = 0, max_allowed = 0, min_allowed = n;
    double t_mask = 0;
    while (ok && states < n_states) {
        gram_state *s = NULL;
        if (gram_state_new(&s, g) != 0) {
            ok = false;
            snprintf(why, sizeof why, "state: %s", err_msg());
            break;
        }
        int32_t prev = (walks % 3 == 1 && bos >= 0) ? bos : -1;
        at_start_bos += prev >= 0;
        walks++;
        for (int step = 0; ok && step < max_len && states < n_states; step++) {
            int nr = reference(s, tv->v, prev, ref);
            double t0 = now_s();
            int nm = gram_mask(s, tv->tv, prev, allowed);
            t_mask += now_s() - t0;
            states++;
            total_states++;
            total_tokens += n;
            if (nr < 0 || nm < 0) {
                ok = false;
                snprintf(why, sizeof why, "step %d: error %d %d: %s", step, nr, nm, err_msg());
                break;
            }
            int bad = -1;
            for (int32_t t = 0; t < n && bad < 0; t++)
                if (allowed[t] != ref[t])
                    bad = t;
            if (bad >= 0 || nm != nr) {
                char piece[64];
                int pl = vocab_piece(tv->v, prev, bad >= 0 ? bad : 0, piece, sizeof piece - 1);
                piece[pl > 0 && pl < (int)sizeof piece ? pl : 0] = 0;
                snprintf(why, sizeof why, "walk %d step %d prev %d: mask %d, reference %d tokens; token %d \"%s\": mask %d",
                         walks, step, prev, nm, nr, bad, piece, bad >= 0 ? allowed[bad] : -1);
                ok = false;
                break;
            }
            if (step == 1 && gram_mask(s, tv->tv, prev, again) != nm) { /* same answer twice */
                ok = false;
                snprintf(why, sizeof why, "a second mask call differs");
                break;
            }
            if (step == 1 && memcmp(again, allowed, (size_t)n) != 0) {
                ok = false;
                snprintf(why, sizeof why, "a second mask call differs");
                break;
            }
            if (nm > max_allowed)
                max_allowed = nm;
            if (nm < min_allowed)
                min_allowed = nm;
            if (nm == 0)
                break;
            /* next token: any allowed one, or one of a single byte (which
             * reaches separators, closing quotes and partial characters) */
            int np = 0, np1 = 0;
            for (int32_t t = 0; t < n; t++)
                if (allowed[t]) {
                    pick[np++] = t;
                    char b[8];
                    if (!vocab_is_eog(tv->v, t) && vocab_piece(tv->v, prev, t, b, sizeof b) == 1)
                        pick1[np1++] = t;
                }
            uint64_t r = rng_next(&seed);
            int32_t tok = (np1 && (r & 1)) ? pick1[(r >> 1) % (uint64_t)np1] : pick[(r >> 1) % (uint64_t)np];
            if (vocab_is_eog(tv->v, tok))
                break;
            int rc = gram_accept_token(s, tv->tv, prev, tok);
            if (rc != 0) {
                ok = false;
                snprintf(why, sizeof why, "allowed token %d refused: %s", tok, err_msg());
                break;
            }
            char b[8];
            int pl = vocab_piece(tv->v, prev, tok, b, sizeof b);
            partial += pl == 1 && ((unsigned char)b[0] & 0x80);
            prev = tok;
        }
        gram_state_free(s);
    }
    snprintf(name, sizeof name,
             "gram mask == reference: %s, %s: %d states x %d tokens on %d walks (%d from BOS), %d..%d allowed, "
             "%d high-byte steps, mask %.0f us per call",
             tv->rel, gname, states, n, walks, at_start_bos, min_allowed, max_allowed, partial,
             states ? t_mask / states * 1e6 : 0.0);
    t_check(ok, name, "%s", why);
    free(allowed);
    free(ref);
    free(again);
    free(pick);
    free(pick1);
    gram_free(g);
}

static const char *TEXT_G = "root ::= [A-Za-z ,.']+ [.!?]";
static const char *UNI_G =
    "root ::= item+ \"!\"\n"
    "item ::= [а-яё ]+ | [\\U0001F600-\\U0001F64F] | \"é\" | \"€\" [0-9]+ | [\\u4e00-\\u9fff]{1,3}\n";
static const char *START_G = "root ::= [Oo] \"nce\" \" upon\" \" a\" \" time\" [ ,.a-z]*";
static const char *PAREN_G = "root ::= p+\np ::= \"(\" ( p | [ a-z] )* \")\"";
static const char *BOUNDED_G = "root ::= \"\\\"\" [^\"\\\\]{0,20} \"\\\"\" | \"<\" [a-z]{3,9} \">\" | [ a-zA-Z]{2,30} \".\"";
static const char *MIXED_G = "root ::= (letter | digit | \" \" | \"'\")+ \"!\"\nletter ::= [a-zA-Z]\ndigit ::= [0-9]";
static const char *NONASCII_G = "root ::= [^\\x00-\\x7F]{1,8} ( \" \" [^\\x00-\\x7F]+ )* \"!\"";

static void masks(void)
{
    bool san = sanitized();
    static const struct {
        const char *rel;
        int states_small; /* per grammar */
    } V[] = {
        {"models/stories260K.gguf", 120},
        {"models/llama-2-tiny-random.gguf", 25},
        {"vocab/ggml-vocab-gpt-2.gguf", 12},
        {"vocab/ggml-vocab-bert-bge.gguf", 12},
    };
    static const struct {
        const char *name;
        const char **src;
    } G[] = {{"json", &JSON}, {"text", &TEXT_G}, {"unicode", &UNI_G}, {"start words", &START_G},
             {"parentheses", &PAREN_G}, {"bounded repetitions", &BOUNDED_G}, {"letters|digits rules", &MIXED_G},
             {"non-ascii runs", &NONASCII_G}};
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (size_t k = 0; k < sizeof V / sizeof V[0]; k++) {
        tvoc tv;
        if (!open_vocab(&tv, V[k].rel)) {
            close_vocab(&tv);
            continue;
        }
        for (size_t j = 0; j < sizeof G / sizeof G[0]; j++) {
            int ns = V[k].states_small;
            if (san)
                ns = ns / 4 > 3 ? ns / 4 : 3;
            if (j == 0)
                ns *= 2; /* json: more */
            mask_vs_reference(&tv, G[j].name, *G[j].src, ns, 10, seed + k * 131 + j);
        }
        close_vocab(&tv);
    }
    printf("INFO gram mask compared on %ld states, %ld token decisions\n", total_states, total_tokens);
}

/* End-of-generation, control tokens and start pieces with a real vocab. */
static void tokens(void)
{
    tvoc tv;
    if (!open_vocab(&tv, "models/llama-2-tiny-random.gguf")) {
        close_vocab(&tv);
        return;
    }
    int32_t n = vocab_n_tokens(tv.v), eos = vocab_eos(tv.v), bos = vocab_bos(tv.v);
    uint8_t *allowed = malloc((size_t)n);
    gram *g = compile("root ::= \"Hello\" \" world\"?");
    gram_state *s = NULL;
    bool ok = g && allowed && gram_state_new(&s, g) == 0;
    int c0 = ok ? gram_mask(s, tv.tv, -1, allowed) : -1;
    ok = ok && c0 > 0 && !allowed[eos] && !allowed[bos] && gram_accept_token(s, tv.tv, -1, eos) == SOV_EINVAL &&
         gram_accept_token(s, tv.tv, -1, bos) == SOV_EINVAL;
    t_check(ok, "gram EOG and BOS refused before the grammar is complete", "count %d: %s", c0, err_msg());
    t_check(s && gram_accept_token(s, tv.tv, -1, n) == SOV_EINVAL && gram_accept_token(s, tv.tv, -1, -3) == SOV_EINVAL,
            "gram token id out of range refused", "%s", err_msg());
    /* find "▁Hello": its piece is "Hello" at the start, " Hello" later */
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int32_t hello = -1;
    if (vocab_encode(tv.v, "Hello", 5, false, false, &ids, &n_ids) == 0 && n_ids == 1)
        hello = ids[0];
    free(ids);
    if (hello >= 0) {
        gram_state *c = NULL;
        ok = gram_state_clone(&c, s) == 0 && allowed[hello] && gram_mask(c, tv.tv, 5, allowed) >= 0 &&
             !allowed[hello] && gram_mask(c, tv.tv, bos, allowed) > 0 && allowed[hello] &&
             gram_accept_token(c, tv.tv, 7, hello) == SOV_EINVAL && gram_accept_token(c, tv.tv, bos, hello) == 0 &&
             gram_can_end(c);
        int ce = c ? gram_mask(c, tv.tv, hello, allowed) : -1;
        ok = ok && ce > 0 && allowed[eos] && gram_accept_token(c, tv.tv, hello, eos) == 0 && gram_can_end(c);
        t_check(ok, "gram start piece: \"\xe2\x96\x81Hello\" is \"Hello\" after BOS, \" Hello\" later; EOS allowed at the end",
                "token %d: %s", hello, err_msg());
        gram_state_free(c);
    } else {
        printf("INFO gram: no single token for \"Hello\" in this vocab; start-piece check skipped\n");
    }
    gram_state_free(s);
    gram_free(g);

    /* a token that closes a string and starts the separator: \": */
    g = compile(JSON);
    char buf[64];
    int32_t colon = -1;
    for (int32_t t = 0; t < n && colon < 0; t++) {
        int l = vocab_piece(tv.v, 5, t, buf, sizeof buf);
        if (l == 2 && memcmp(buf, "\":", 2) == 0)
            colon = t;
    }
    s = NULL;
    if (colon >= 0 && g && gram_state_new(&s, g) == 0 && gram_accept_bytes(s, "{\"key", 5) == 0) {
        int cnt = gram_mask(s, tv.tv, 5, allowed);
        gram_state *c = NULL;
        ok = cnt > 0 && allowed[colon] && gram_accept_token(s, tv.tv, 5, colon) == 0 &&
             gram_mask(s, tv.tv, colon, allowed) > 0 && gram_state_clone(&c, s) == 0 &&
             gram_accept_bytes(c, "}", 1) == SOV_EINVAL && gram_accept_bytes(s, "1}", 2) == 0 && gram_can_end(s);
        gram_state_free(c);
        t_check(ok, "gram token \\\": closes the key and passes the separator", "token %d: %s", colon, err_msg());
    } else {
        printf("INFO gram: no \\\": token in this vocab\n");
    }
    gram_state_free(s);
    gram_free(g);
    free(allowed);
    close_vocab(&tv);
}

/* Mutated grammars: parse errors or working grammars, never a crash (this
 * is mostly for the sanitizer build). */
static void fuzz(void)
{
    const char *seeds[5] = {JSON, NULL, NULL, NULL, "root ::= [a-z]{2,5} (\"x\" | [^\\]])* ."};
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++) {
        if (!strcmp(CASES[k].name, "balanced parentheses"))
            seeds[1] = CASES[k].src;
        if (!strcmp(CASES[k].name, "comments and multi-line rules"))
            seeds[2] = CASES[k].src;
        if (!strcmp(CASES[k].name, "nullable rules"))
            seeds[3] = CASES[k].src;
    }
    uint64_t seed = 42;
    int n_iter = sanitized() ? 400 : 3000, parsed = 0, refused = 0;
    char buf[2048];
    for (int it = 0; it < n_iter; it++) {
        const char *src = seeds[it % 5];
        size_t n = strlen(src);
        if (n >= sizeof buf)
            n = sizeof buf - 1;
        memcpy(buf, src, n);
        int muts = 1 + (int)(rng_next(&seed) % 4);
        for (int m = 0; m < muts; m++) {
            uint64_t r = rng_next(&seed);
            size_t at = (size_t)(r % (n ? n : 1));
            static const char pool[] = "()[]|*+?{},-^\\\"#\n .a0:=x\xd0\xbf";
            switch ((r >> 32) % 4) {
            case 0: buf[at] = pool[(r >> 40) % (sizeof pool - 1)]; break;
            case 1: n = at; break; /* truncate */
            case 2: if (n + 1 < sizeof buf) { memmove(buf + at + 1, buf + at, n - at); buf[at] = pool[(r >> 40) % (sizeof pool - 1)]; n++; } break;
            default: if (n) { memmove(buf + at, buf + at + 1, n - at - 1); n--; } break;
            }
        }
        gram *g = NULL;
        int rc = gram_parse(&g, buf, n);
        if (rc == 0) {
            parsed++;
            gram_state *s = NULL;
            if (gram_state_new(&s, g) == 0) {
                for (int k = 0; k < 64; k++) {
                    char b[3];
                    uint64_t r = rng_next(&seed);
                    static const char text[] = "{}[]\",:0123 abcx()\\\xd0\xbf\xe2\x82\xac";
                    for (int j = 0; j < 3; j++)
                        b[j] = text[(r >> (8 * j)) % (sizeof text - 1)];
                    gram_accept_bytes(s, b, 1 + (size_t)(r >> 40) % 3);
                    gram_can_end(s);
                    gram_done(s);
                }
                gram_state *c = NULL;
                if (gram_state_clone(&c, s) == 0)
                    gram_accept_bytes(c, "a", 1);
                gram_state_free(c);
            }
            gram_state_free(s);
        } else if (rc == SOV_EINVAL && strncmp(err_msg(), "grammar ", 8) == 0) {
            refused++;
        } else {
            t_check(false, "gram fuzz", "rc %d: %s", rc, err_msg());
            return;
        }
        gram_free(g);
    }
    char name[120];
    snprintf(name, sizeof name, "gram fuzz: %d mutated grammars, %d parsed, %d refused with a position", n_iter, parsed,
             refused);
    t_check(parsed + refused == n_iter, name, "lost some");
}

static void timing(void)
{
    tvoc tv;
    if (!open_vocab(&tv, "models/llama-2-tiny-random.gguf")) {
        close_vocab(&tv);
        return;
    }
    gram *g = compile(JSON);
    int32_t n = vocab_n_tokens(tv.v);
    uint8_t *allowed = malloc((size_t)n);
    static const struct {
        const char *name;
        const char *text;
    } S[] = {
        {"at the start", ""},
        {"after '{'", "{"},
        {"inside a string", "{\"name\": \"Ada Love"},
        {"in a number", "{\"a\": 12"},
        {"after a value in an array", "[1, \"x\""},
    };
    char line[600];
    size_t pl = (size_t)snprintf(line, sizeof line, "INFO gram mask (CPU time per call), json grammar, %d-token vocab:", n);
    int reps = sanitized() ? 3 : 50;
    for (size_t k = 0; g && allowed && k < sizeof S / sizeof S[0]; k++) {
        gram_state *s = NULL;
        if (gram_state_new(&s, g) != 0 || gram_accept_bytes(s, S[k].text, strlen(S[k].text)) != 0) {
            gram_state_free(s);
            continue;
        }
        int cnt = gram_mask(s, tv.tv, 5, allowed);
        double t0 = now_s();
        for (int r = 0; r < reps; r++)
            gram_mask(s, tv.tv, 5, allowed);
        double us = (now_s() - t0) / reps * 1e6;
        pl += (size_t)snprintf(line + pl, sizeof line - pl, " %s %.0f us (%d allowed);", S[k].name, us, cnt);
        gram_state_free(s);
    }
    printf("%s\n", line);
    /* a string of at most 200 characters (a schema's maxLength): the
     * stacks change with every character */
    gram_free(g);
    g = compile("root ::= \"\\\"\" char{0,200} \"\\\"\"\n"
                "char ::= [^\"\\\\\\x00-\\x1F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4} )");
    gram_state *s = NULL;
    if (g && allowed && gram_state_new(&s, g) == 0 && gram_accept_bytes(s, "\"Ada Love", 9) == 0) {
        int cnt = gram_mask(s, tv.tv, 5, allowed);
        double t0 = now_s();
        for (int r = 0; r < reps; r++)
            gram_mask(s, tv.tv, 5, allowed);
        printf("INFO gram mask (CPU time per call), string of at most 200 characters, inside it: %.0f us (%d allowed)\n",
               (now_s() - t0) / reps * 1e6, cnt);
    }
    gram_state_free(s);
    free(allowed);
    gram_free(g);
    close_vocab(&tv);
}

int main(void)
{
    tables();
    errors();
    utf8();
    states();
    tokens();
    masks();
    fuzz();
    timing();
    return t_done();
}
