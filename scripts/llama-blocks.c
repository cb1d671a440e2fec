// Writes blocks quantized by llama.cpp's own quantizer (ggml_quantize_chunk)
// and the floats llama.cpp de-quantizes them to, for the bit-identity tests
// of QLoader's layouts that claim a GGUF type's bytes and of the GGUF
// reader's de-quantizers. The importance-matrix types IQ1/IQ2/IQ3 (some of
// which refuse to quantize without one) get a fixed positive importance
// matrix; every other type is quantized without one.
// Built and run by scripts/make-llama-blocks.sh; the outputs are checked in.
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include "ggml.h"

// Whether `type` is quantized with the importance matrix below: the IQ1, IQ2
// and IQ3 types. IQ4_NL and IQ4_XS are not (their checked-in blocks were
// written without one).
static int wants_imatrix(enum ggml_type type) {
    switch (type) {
        case GGML_TYPE_IQ2_XXS: case GGML_TYPE_IQ2_XS: case GGML_TYPE_IQ2_S:
        case GGML_TYPE_IQ3_XXS: case GGML_TYPE_IQ3_S:
        case GGML_TYPE_IQ1_S: case GGML_TYPE_IQ1_M:
            return 1;
        default:
            return 0;
    }
}

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
    // The ternary types (scaled by each block's largest magnitude) get no
    // large ones, or nearly all their codes would be zero.
    const int ternary = type == GGML_TYPE_TQ1_0 || type == GGML_TYPE_TQ2_0;
    for (int i = 0; i < rows * cols; i++) {
        float u = sinf(0.37f * i) + 0.5f * cosf(0.011f * i * i);
        src[i] = 0.02f * u * (1.0f + ((i % 97) == 0 && !ternary ? 4.0f : 0.0f));
        if (i >= 160 && i < 192) src[i] = fabsf(src[i]) + 0.01f;
    }
    size_t row_size = ggml_row_size(type, cols);
    void *dst = malloc(row_size * rows);
    // A deterministic, positive importance per column.
    float *imatrix = malloc(sizeof(float) * cols);
    for (int i = 0; i < cols; i++) imatrix[i] = 1.0f + 0.5f * sinf(0.1f * i);
    size_t written = ggml_quantize_chunk(type, src, dst, 0, rows, cols,
                                         wants_imatrix(type) ? imatrix : NULL);
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
