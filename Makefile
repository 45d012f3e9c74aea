# sov build. `make demo`, `make test`, `make check`, `make bench`.
CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
SAN     ?=
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -pthread -MMD -MP $(OPT) $(SAN) $(CFLAGS)
LDLIBS_ALL = -lmicrohttpd -lcurl -lcrypto -linih -lpcre2-8 -ljansson -lunistring -lm -pthread $(SAN) $(LDLIBS)

LIB_SRC  := $(shell find src -name '*.c' ! -path 'src/cli/*' | sort)
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
# The web console's files, embedded in the library by a generated C file.
CONSOLE_IN := $(sort $(wildcard src/server/console/*))
LIB_OBJ  += $(BUILD)/obj/gen/console_files.o

.PHONY: all deps build test check bench bench-kern demo clean tests-bin
all: build

deps:
	@bash scripts/deps.sh

build: $(BUILD)/sov

# SIMD kernel files are compiled for their instruction set; they only run
# after kern.c has checked the CPU has it.
KDIR := $(BUILD)/obj/src/engine/kern
$(KDIR)/kern_avx2.o $(KDIR)/kern_avx2_k.o $(KDIR)/kern_avx2_kv.o: ARCH = -mavx2 -mfma -mf16c
$(KDIR)/kern_avx512.o $(KDIR)/kern_avx512_k.o $(KDIR)/kern_avx512_r16.o \
  $(KDIR)/kern_avx512_kv.o: ARCH = -mavx2 -mfma -mf16c -mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx512vnni

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(ARCH) -c $< -o $@

# scripts/embed.c writes the console's files (src/server/console/) as C arrays.
$(BUILD)/tools/embed: scripts/embed.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $<

$(BUILD)/gen/console_files.c: $(BUILD)/tools/embed $(CONSOLE_IN)
	@mkdir -p $(dir $@)
	$(BUILD)/tools/embed $(CONSOLE_IN) >$@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/console_files.o: $(BUILD)/gen/console_files.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Isrc -c $< -o $@

$(BUILD)/libsov.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/sov: $(CLI_OBJ) $(BUILD)/libsov.a
	$(CC) $(CFLAGS_ALL) -o $@ $(CLI_OBJ) $(BUILD)/libsov.a $(LDLIBS_ALL)

$(BUILD)/tests/%: tests/%.c $(wildcard tests/*.h) $(BUILD)/libsov.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Isrc -o $@ $< $(BUILD)/libsov.a $(LDLIBS_ALL)

tests-bin: $(BUILD)/sov $(TEST_BIN)

test: deps
	@$(MAKE) --no-print-directory tests-bin
	@bash tests/run.sh $(BUILD)

# AddressSanitizer + UndefinedBehaviorSanitizer build of everything, then all tests.
check: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" tests-bin
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  SOV_SANITIZED=1 bash tests/run.sh build-asan

bench: deps build $(BUILD)/router_bench
	@bash scripts/bench.sh $(BUILD)

# Kernel micro-benchmark (bench/kern_bench.c): GB/s and GFLOP/s of every gemm
# kernel of every table the CPU has. Never part of make test / make bench.
# Pass options through KB_ARGS, e.g. make bench-kern KB_ARGS="-t avx512 -T q4_0".
$(BUILD)/kern_bench: bench/kern_bench.c $(wildcard tests/*.h) $(BUILD)/libsov.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Isrc -Itests -o $@ $< $(BUILD)/libsov.a $(LDLIBS_ALL)

# Router-overhead load generator and fake upstream (scripts/bench_router.sh, part of make bench).
$(BUILD)/router_bench: bench/router_bench.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -o $@ $<

bench-kern: $(BUILD)/kern_bench
	@$(BUILD)/kern_bench $(KB_ARGS)

demo: deps build
	@bash scripts/demo.sh $(BUILD)

clean:
	rm -rf build build-asan

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
