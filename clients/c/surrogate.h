/* The C example client's functions (predict.c: HTTP predict; table.c: the model as a
 * downloaded table, interpolated locally). */
#ifndef SURROGATE_H
#define SURROGATE_H

#include <curl/curl.h>
#include <stddef.h>

/* A growing byte buffer for libcurl's write callback (always NUL-terminated). */
typedef struct {
    char *data;
    size_t size;
} surrogate_buffer;

size_t surrogate_append(void *chunk, size_t size, size_t count, void *user);

int surrogate_predict(const char *base_url, const char *model, const double *strain,
                      size_t n, double *mean, double *aleatoric_sd, double *epistemic_sd,
                      double *total_sd, double *tangent, char *errbuf, size_t errlen);
int surrogate_predict_on(CURL *curl, const char *base_url, const char *model,
                         const double *strain, size_t n, double *mean, double *aleatoric_sd,
                         double *epistemic_sd, double *total_sd, double *tangent,
                         char *errbuf, size_t errlen);

#define SURROGATE_MAX_COLUMNS 64

/* The export's CSV: `points` ascending strains, and per strain `columns` values in the
 * CSV's order after `strain` (mean, aleatoric_sd, epistemic_sd, total_sd, tangent,
 * tangent_epistemic_sd, then quantiles and curves), row-major in `values`. */
typedef struct {
    size_t points, columns;
    double *strain;
    double *values;
    double max_error; /* the header's max_interpolation_error, in total SDs */
} surrogate_table;

/* GET base_url/v1/models/model/export?format=csv[&query] and parse it; 0 on success,
 * else the HTTP status (-1: transport or parse failure) with the reason in errbuf. */
int surrogate_table_download(const char *base_url, const char *model, const char *query,
                             surrogate_table *table, char *errbuf, size_t errlen);
/* Parse the CSV text (modified in place); 0 on success. */
int surrogate_table_parse(char *csv, surrogate_table *table);
/* Linear interpolation of every column at strain x into out[0..columns-1] (binary search
 * for the interval; beyond the ends, the end intervals' lines are extended). */
void surrogate_table_eval(const surrogate_table *table, double x, double *out);
void surrogate_table_free(surrogate_table *table);

#endif
