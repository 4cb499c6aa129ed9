// Plain C++ Verilator harness for mram_cim: the limit the co-simulation is measured against.
// No Python, no VPI: the host's AXI4-Lite transfers and the array's comparator edges are
// driven here, from fire times the analog model precomputed (tb/raw_bench.py writes them).
//
// Input file (binary, little endian): u32 n_ops, u32 rows, u32 cols, u32 clock_period_ps,
// u32 n_settings, then n_settings x (u32 addr, u32 value), then per op: rows/8 bytes of input
// bits, cols x i64 fire times (ps; -1 already high, >= 2^62 never).
// Output: one line "ops <n> seconds <s>" on stdout and, per op, the CODE words to codes.bin.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>
#include "Vmram_cim.h"
#include "verilated.h"

// Verilator spells the double underscore of Amaranth's port names (bus__awaddr) as ___05F.

static const uint32_t REG_FLAGS = 0x01C, REG_CMD = 0x010, REG_IRQ_EN = 0x020, REG_X = 0x100,
                      REG_CODE = 0x400, REG_ACT = 0x200;

struct Harness {
    std::unique_ptr<VerilatedContext> ctx{new VerilatedContext};
    std::unique_ptr<Vmram_cim> top;
    uint64_t half_ps;       // half clock period
    uint64_t now_fs = 0;    // simulated time
    int cols;
    std::vector<int64_t> fire;  // fire times of the evaluation in flight
    std::vector<uint64_t> cmp_at_fs;
    uint64_t eval_start_fs = 0;
    bool evaluating = false;

    Harness(uint32_t period_ps, int cols_) : half_ps(period_ps / 2), cols(cols_) {
        top.reset(new Vmram_cim{ctx.get()});
    }
    void set_cmp(int j, bool v) {
        // array__cmp is a VlWide or a plain integer depending on the width.
        uint32_t* words = reinterpret_cast<uint32_t*>(&top->array___05Fcmp);
        if (v) words[j / 32] |= 1u << (j % 32); else words[j / 32] &= ~(1u << (j % 32));
    }
    void clear_cmp() { std::memset(&top->array___05Fcmp, 0, sizeof(top->array___05Fcmp)); }
    // Advance to time t_fs, applying comparator edges that fall before it.
    void advance_to(uint64_t t_fs) {
        if (evaluating) {
            for (int j = 0; j < cols; ++j) {
                if (cmp_at_fs[j] && cmp_at_fs[j] <= t_fs) {
                    now_fs = cmp_at_fs[j];
                    set_cmp(j, true);
                    cmp_at_fs[j] = 0;
                    top->eval();
                }
            }
        }
        now_fs = t_fs;
    }
    void half_cycle(int level) {
        advance_to(now_fs + half_ps * 1000);
        top->clk = level;
        top->eval();
        bool ev = top->array___05Fevaluate;
        if (ev && !evaluating) {  // evaluate rose at this edge: schedule every column's edge
            evaluating = true;
            eval_start_fs = now_fs;
            for (int j = 0; j < cols; ++j) {
                int64_t f = fire[j];
                if (f < 0) set_cmp(j, true);
                cmp_at_fs[j] = (f >= 0 && f < (int64_t(1) << 62)) ? now_fs + uint64_t(f) * 1000 + 500 : 0;
            }
            top->eval();
        } else if (!ev && evaluating) {  // precharge clears the comparators
            evaluating = false;
            clear_cmp();
            top->eval();
        }
    }
    void tick() { half_cycle(1); half_cycle(0); }
    void write(uint32_t addr, uint32_t data) {
        top->bus___05Fawaddr = addr; top->bus___05Fwdata = data; top->bus___05Fwstrb = 0xF;
        top->bus___05Fawvalid = 1; top->bus___05Fwvalid = 1; top->bus___05Fbready = 1;
        bool aw = false, w = false;
        while (!(aw && w)) {
            top->eval();
            bool aw_fire = !aw && top->bus___05Fawready, w_fire = !w && top->bus___05Fwready;
            tick();
            if (aw_fire) { aw = true; top->bus___05Fawvalid = 0; }
            if (w_fire) { w = true; top->bus___05Fwvalid = 0; }
        }
        while (true) { top->eval(); bool b = top->bus___05Fbvalid; tick(); if (b) break; }
    }
    uint32_t read(uint32_t addr) {
        top->bus___05Faraddr = addr; top->bus___05Farvalid = 1; top->bus___05Frready = 1;
        while (true) { top->eval(); bool a = top->bus___05Farready; tick(); if (a) break; }
        top->bus___05Farvalid = 0;
        while (true) {
            top->eval();
            if (top->bus___05Frvalid) { uint32_t d = top->bus___05Frdata; tick(); return d; }
            tick();
        }
    }
};

int main(int argc, char** argv) {
    if (argc < 3) { std::fprintf(stderr, "usage: %s input.bin codes.bin\n", argv[0]); return 2; }
    FILE* in = std::fopen(argv[1], "rb");
    if (!in) { std::fprintf(stderr, "cannot open %s\n", argv[1]); return 2; }
    uint32_t hdr[5];
    if (std::fread(hdr, 4, 5, in) != 5) return 2;
    uint32_t n_ops = hdr[0], rows = hdr[1], cols = hdr[2], period = hdr[3], n_set = hdr[4];
    std::vector<uint32_t> settings(2 * n_set);
    if (std::fread(settings.data(), 4, 2 * n_set, in) != 2 * n_set) return 2;
    size_t xbytes = rows / 8;
    std::vector<uint8_t> xs(size_t(n_ops) * xbytes);
    std::vector<int64_t> fires(size_t(n_ops) * cols);
    for (uint32_t k = 0; k < n_ops; ++k) {
        if (std::fread(&xs[k * xbytes], 1, xbytes, in) != xbytes) return 2;
        if (std::fread(&fires[size_t(k) * cols], 8, cols, in) != cols) return 2;
    }
    std::fclose(in);
    Harness h(period, int(cols));
    h.fire.assign(cols, 0);
    h.cmp_at_fs.assign(cols, 0);
    h.top->rst = 1;
    for (int i = 0; i < 4; ++i) h.tick();
    h.top->rst = 0;
    h.tick();
    for (uint32_t i = 0; i < n_set; ++i) h.write(settings[2 * i], settings[2 * i + 1]);
    h.write(REG_IRQ_EN, 1);
    uint32_t code_words = (cols + 3) / 4, col_words = (cols + 31) / 32, row_words = (rows + 31) / 32;
    std::vector<uint32_t> out(size_t(n_ops) * code_words);
    auto t0 = std::chrono::steady_clock::now();
    for (uint32_t k = 0; k < n_ops; ++k) {
        std::memcpy(h.fire.data(), &fires[size_t(k) * cols], 8 * cols);
        for (uint32_t w = 0; w < row_words; ++w) {
            uint32_t word = 0;
            std::memcpy(&word, &xs[k * xbytes + 4 * w], std::min<size_t>(4, xbytes - 4 * w));
            h.write(REG_X + 4 * w, word);
        }
        h.write(REG_CMD, 1);
        while (!h.top->irq) h.tick();
        uint32_t flags = h.read(REG_FLAGS);
        h.write(REG_FLAGS, flags);
        for (uint32_t w = 0; w < code_words; ++w) out[size_t(k) * code_words + w] = h.read(REG_CODE + 4 * w);
        for (uint32_t w = 0; w < col_words; ++w) (void)h.read(REG_ACT + 4 * w);
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    FILE* o = std::fopen(argv[2], "wb");
    std::fwrite(out.data(), 4, out.size(), o);
    std::fclose(o);
    std::printf("ops %u seconds %.6f\n", n_ops, s);
    h.top->final();
    return 0;
}
