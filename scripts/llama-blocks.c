// Writes blocks quantized by llama.cpp's own quantizer (ggml_quantize_chunk,
// no importance matrix) and the floats llama.cpp de-quantizes them to, for
// the bit-identity tests of QLoader's layouts that claim a GGUF type's bytes.
// Built and run by scripts/make-llama-blocks.sh; the outputs are checked in.
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include "ggml.h"

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) { perror(path); exit(1); }
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s TYPE OUT.bin OUT.f32\n", argv[0]); return 2; }
    enum ggml_type type = (enum ggml_type) atoi(argv[1]);
    const int rows = 2, cols = 512;
    float *src = malloc(sizeof(float) * rows * cols);
    // Deterministic weights of a plausible shape: mostly small, a few large,
    // every 32-value sub-block straddling zero except a few all-positive ones.
    for (int i = 0; i < rows * cols; i++) {
        float u = sinf(0.37f * i) + 0.5f * cosf(0.011f * i * i);
        src[i] = 0.02f * u * (1.0f + ((i % 97) == 0 ? 4.0f : 0.0f));
        if (i >= 160 && i < 192) src[i] = fabsf(src[i]) + 0.01f;
    }
    size_t row_size = ggml_row_size(type, cols);
    void *dst = malloc(row_size * rows);
    size_t written = ggml_quantize_chunk(type, src, dst, 0, rows, cols, NULL);
    if (written != row_size * rows) { fprintf(stderr, "wrote %zu, expected %zu\n", written, row_size * rows); return 1; }
    float *back = malloc(sizeof(float) * rows * cols);
    const struct ggml_type_traits *traits = ggml_get_type_traits(type);
    for (int r = 0; r < rows; r++) {
        traits->to_float((const char *) dst + r * row_size, back + r * cols, cols);
    }
    write_file(argv[2], dst, row_size * rows);
    write_file(argv[3], back, sizeof(float) * rows * cols);
    printf("%s: %d rows x %d, %zu bytes per row\n", ggml_type_name(type), rows, cols, row_size);
    return 0;
}
