/*
 * Minimal C client of the material surrogate service (libcurl, no JSON library), meant to
 * be pasted into a simulation code: surrogate_predict() posts a batch of strains and
 * fills caller-owned arrays with the mean, aleatoric, epistemic and total SD (and,
 * optionally, the tangent d mean / d strain) in physical units. table.c downloads the
 * model once as a CSV table and interpolates it locally, which is how a solver evaluates
 * it at every integration point (see README.md for the measured speed-up).
 *
 * Build:  make            (or: cc -O2 -o predict predict.c table.c -lcurl)
 * Run:    ./predict [--tangent] http://127.0.0.1:8000 demo -0.4 0 0.4
 *         ./predict --table [QUERY] http://127.0.0.1:8000 demo -0.4 0 0.4
 *         ./predict --bench http://127.0.0.1:8000 demo
 * Prints one line per strain: strain mean aleatoric_sd epistemic_sd total_sd [tangent]
 * (--table: the same columns interpolated from the downloaded table, tangent included;
 * QUERY, e.g. points=2001, is passed to the export). --bench prints the time per
 * evaluation of local interpolation and of an HTTP round trip.
 */
#define _DEFAULT_SOURCE /* getloadavg */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "surrogate.h"

size_t surrogate_append(void *chunk, size_t size, size_t count, void *user) {
    surrogate_buffer *buf = (surrogate_buffer *)user;
    size_t bytes = size * count;
    char *grown = realloc(buf->data, buf->size + bytes + 1);
    if (grown == NULL) return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    buf->data = grown;
    memcpy(buf->data + buf->size, chunk, bytes);
    buf->size += bytes;
    buf->data[buf->size] = '\0';
    return bytes;
}

/* Reads the JSON array of numbers stored under "key" into out[0..n-1]; 0 on success. */
static int read_array(const char *json, const char *key, double *out, size_t n) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":[", key);
    const char *p = strstr(json, pattern);
    if (p == NULL) return -1;
    p += strlen(pattern);
    for (size_t i = 0; i < n; i++) {
        char *end;
        out[i] = strtod(p, &end);
        if (end == p) return -1;
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    return 0;
}

/*
 * POST base_url/v1/models/model/predict with the n strains on an existing curl handle (so
 * consecutive calls reuse its connection). mean, aleatoric_sd, epistemic_sd and total_sd
 * must hold n doubles; tangent may be NULL (not requested). Returns 0 on success;
 * otherwise the HTTP status (or -1 for a transport failure) with the service's error
 * body, or curl's message, in errbuf.
 */
int surrogate_predict_on(CURL *curl, const char *base_url, const char *model,
                         const double *strain, size_t n, double *mean, double *aleatoric_sd,
                         double *epistemic_sd, double *total_sd, double *tangent,
                         char *errbuf, size_t errlen) {
    size_t capacity = 64 + 26 * n;
    char *body = malloc(capacity);
    char url[1024];
    surrogate_buffer response = {NULL, 0};
    long status = 0;
    int rc = -1;
    if (body == NULL) return -1;
    size_t used = (size_t)snprintf(body, capacity, "{\"tangent\":%s,\"strain\":[",
                                   tangent ? "true" : "false");
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(body + used, capacity - used, "%s%.17g", i ? "," : "",
                                 strain[i]);
    snprintf(body + used, capacity - used, "]}");
    snprintf(url, sizeof url, "%s/v1/models/%s/predict", base_url, model);

    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, surrogate_append);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    CURLcode result = curl_easy_perform(curl);
    if (result != CURLE_OK) {
        snprintf(errbuf, errlen, "%s", curl_easy_strerror(result));
    } else {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (status != 200) {
            snprintf(errbuf, errlen, "%s", response.data ? response.data : "");
            rc = (int)status;
        } else if (read_array(response.data, "mean", mean, n) ||
                   read_array(response.data, "aleatoric_sd", aleatoric_sd, n) ||
                   read_array(response.data, "epistemic_sd", epistemic_sd, n) ||
                   read_array(response.data, "total_sd", total_sd, n) ||
                   (tangent && read_array(response.data, "tangent", tangent, n))) {
            snprintf(errbuf, errlen, "unexpected response: %.200s", response.data);
        } else {
            rc = 0;
        }
    }
    curl_slist_free_all(headers);
    free(response.data);
    free(body);
    return rc;
}

/* surrogate_predict_on() with a handle of its own (one connection per call). */
int surrogate_predict(const char *base_url, const char *model, const double *strain,
                      size_t n, double *mean, double *aleatoric_sd, double *epistemic_sd,
                      double *total_sd, double *tangent, char *errbuf, size_t errlen) {
    CURL *curl = curl_easy_init();
    if (curl == NULL) return -1;
    int rc = surrogate_predict_on(curl, base_url, model, strain, n, mean, aleatoric_sd,
                                  epistemic_sd, total_sd, tangent, errbuf, errlen);
    curl_easy_cleanup(curl);
    return rc;
}

static double seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

/* Local interpolation against the HTTP round trip, per evaluation of one strain. */
static int bench(const char *base_url, const char *model) {
    surrogate_table table;
    char error[4096] = "";
    double started = seconds();
    if (surrogate_table_download(base_url, model, NULL, &table, error, sizeof error) != 0) {
        fprintf(stderr, "download failed: %s\n", error);
        return 1;
    }
    double download = seconds() - started;
    printf("table: %zu points x %zu columns, interpolation error %.3g total SD, downloaded "
           "and parsed in %.1f ms\n", table.points, table.columns, table.max_error,
           1e3 * download);
    double low = table.strain[0], span = table.strain[table.points - 1] - low;
    double out[SURROGATE_MAX_COLUMNS], checksum = 0.0;
    unsigned long long state = 42;
    const long local_n = 2000000;
    started = seconds();
    for (long i = 0; i < local_n; i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL; /* Knuth's LCG */
        double x = low + span * (double)(state >> 11) / 9007199254740992.0;
        surrogate_table_eval(&table, x, out);
        checksum += out[0];
    }
    double local = (seconds() - started) / (double)local_n;

    CURL *curl = curl_easy_init();
    double mean, aleatoric, epistemic, total, x = low + 0.5 * span;
    const int http_n = 300;
    /* One warm-up call opens the connection the timed calls reuse. */
    int rc = curl == NULL ? -1 : surrogate_predict_on(curl, base_url, model, &x, 1, &mean,
                                                      &aleatoric, &epistemic, &total, NULL,
                                                      error, sizeof error);
    started = seconds();
    for (int i = 0; rc == 0 && i < http_n; i++)
        rc = surrogate_predict_on(curl, base_url, model, &x, 1, &mean, &aleatoric,
                                  &epistemic, &total, NULL, error, sizeof error);
    double http = (seconds() - started) / http_n;
    if (curl != NULL) curl_easy_cleanup(curl);
    surrogate_table_free(&table);
    if (rc != 0) {
        fprintf(stderr, "prediction failed (%d): %s\n", rc, error);
        return 1;
    }
    printf("local interpolation: %.1f ns per evaluation (%ld evaluations, all columns; "
           "checksum %.6g)\n", 1e9 * local, local_n, checksum);
    printf("HTTP predict, one strain, kept-alive connection: %.1f us per evaluation "
           "(%d requests)\n", 1e6 * http, http_n);
    printf("local interpolation is %.0fx faster per evaluation\n", http / local);
    double load[3];
    if (getloadavg(load, 3) == 3)
        printf("load average %.2f %.2f %.2f (other processes skew both timings)\n", load[0],
               load[1], load[2]);
    return 0;
}

static int table_mode(const char *query, const char *base_url, const char *model,
                      const double *strain, size_t n) {
    surrogate_table table;
    char error[4096] = "";
    if (surrogate_table_download(base_url, model, query, &table, error, sizeof error) != 0) {
        fprintf(stderr, "download failed: %s\n", error);
        return 1;
    }
    double out[SURROGATE_MAX_COLUMNS];
    for (size_t i = 0; i < n; i++) {
        surrogate_table_eval(&table, strain[i], out);
        /* Columns: mean aleatoric_sd epistemic_sd total_sd tangent ... */
        printf("%.17g %.17g %.17g %.17g %.17g %.17g\n", strain[i], out[0], out[1], out[2],
               out[3], out[4]);
    }
    surrogate_table_free(&table);
    return 0;
}

int main(int argc, char **argv) {
    int first = 1, with_tangent = 0;
    const char *query = NULL;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (argc == 4 && strcmp(argv[1], "--bench") == 0) {
        int rc = bench(argv[2], argv[3]);
        curl_global_cleanup();
        return rc;
    }
    if (argc > 1 && strcmp(argv[1], "--tangent") == 0) {
        with_tangent = 1;
        first = 2;
    } else if (argc > 1 && strcmp(argv[1], "--table") == 0) {
        first = 2;
        /* An optional export query (e.g. points=2001) before the URL. */
        if (argc > 2 && strstr(argv[2], "://") == NULL) {
            query = argv[2];
            first = 3;
        }
    }
    if (argc - first < 3) {
        fprintf(stderr, "usage: %s [--tangent] BASE_URL MODEL STRAIN...\n"
                        "       %s --table [QUERY] BASE_URL MODEL STRAIN...\n"
                        "       %s --bench BASE_URL MODEL\n", argv[0], argv[0], argv[0]);
        curl_global_cleanup();
        return 2;
    }
    const char *base_url = argv[first], *model = argv[first + 1];
    size_t n = (size_t)(argc - first - 2);
    double *values = calloc(6 * n, sizeof(double));
    if (values == NULL) return 1;
    double *strain = values, *mean = values + n, *aleatoric = values + 2 * n,
           *epistemic = values + 3 * n, *total = values + 4 * n, *tangent = values + 5 * n;
    for (size_t i = 0; i < n; i++) strain[i] = strtod(argv[first + 2 + (int)i], NULL);

    if (first > 1 && strcmp(argv[1], "--table") == 0) {
        int rc = table_mode(query, base_url, model, strain, n);
        curl_global_cleanup();
        free(values);
        return rc;
    }
    char error[4096] = "";
    int rc = surrogate_predict(base_url, model, strain, n, mean, aleatoric, epistemic, total,
                               with_tangent ? tangent : NULL, error, sizeof error);
    curl_global_cleanup();
    if (rc != 0) {
        fprintf(stderr, "prediction failed (%d): %s\n", rc, error);
        free(values);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        printf("%.17g %.17g %.17g %.17g %.17g", strain[i], mean[i], aleatoric[i],
               epistemic[i], total[i]);
        if (with_tangent) printf(" %.17g", tangent[i]);
        printf("\n");
    }
    free(values);
    return 0;
}
