/* sov: one binary, one subcommand per file in src/cli/. */
#include "cmd.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} subcmd;

static const subcmd cmds[] = {
    {"run", cmd_run, "generate text from a GGUF model"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server with continuous batching"},
    {"info", cmd_info, "describe a GGUF model: architecture, tensors, memory"},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"convert", cmd_convert, "convert a Hugging Face llama checkpoint folder to GGUF"},
    {"bench", cmd_bench, "prompt and generation speed, memory-bandwidth roofline"},
    {"quantize", cmd_quantize, "rewrite a GGUF model with its weights in another type (q4_k_m, q8_0, ...)"},
    {"plan", cmd_plan, "capacity and economics: fit, speed, cost against the cloud, claims checked"},
    {"synth", cmd_synth, "write a llama GGUF with seeded random weights in a real model's shape"},
    {"pull", cmd_pull, "download a GGUF model (URL or hf://ORG/REPO/FILE.gguf) into the models folder"},
    {"ls", cmd_ls, "list the models folder: name, size, arch, quant, params"},
    {"rm", cmd_rm, "remove a model from the models folder"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: sov COMMAND [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].help);
    fprintf(f, "\n`sov COMMAND --help` shows the options of a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "sov: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
