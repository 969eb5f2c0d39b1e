/*
 * Minimal C client of the material surrogate service (libcurl, no JSON library), meant to
 * be pasted into a simulation code: surrogate_predict() posts a batch of strains and
 * fills caller-owned arrays with the mean, aleatoric, epistemic and total SD (and,
 * optionally, the tangent d mean / d strain) in physical units.
 *
 * Build:  make            (or: cc -O2 -o predict predict.c -lcurl)
 * Run:    ./predict [--tangent] http://127.0.0.1:8000 demo -0.4 0 0.4
 * Prints one line per strain: strain mean aleatoric_sd epistemic_sd total_sd [tangent]
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *data;
    size_t size;
} buffer;

static size_t append(void *chunk, size_t size, size_t count, void *user) {
    buffer *buf = (buffer *)user;
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
 * POST base_url/v1/models/model/predict with the n strains. mean, aleatoric_sd,
 * epistemic_sd and total_sd must hold n doubles; tangent may be NULL (not requested).
 * Returns 0 on success; otherwise the HTTP status (or -1 for a transport failure) with the
 * service's error body, or curl's message, in errbuf.
 */
int surrogate_predict(const char *base_url, const char *model, const double *strain,
                      size_t n, double *mean, double *aleatoric_sd, double *epistemic_sd,
                      double *total_sd, double *tangent, char *errbuf, size_t errlen) {
    size_t capacity = 64 + 26 * n;
    char *body = malloc(capacity);
    char url[1024];
    buffer response = {NULL, 0};
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

    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        free(body);
        return -1;
    }
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append);
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
    curl_easy_cleanup(curl);
    free(response.data);
    free(body);
    return rc;
}

int main(int argc, char **argv) {
    int first = 1, with_tangent = 0;
    if (argc > 1 && strcmp(argv[1], "--tangent") == 0) {
        with_tangent = 1;
        first = 2;
    }
    if (argc - first < 3) {
        fprintf(stderr, "usage: %s [--tangent] BASE_URL MODEL STRAIN...\n", argv[0]);
        return 2;
    }
    const char *base_url = argv[first], *model = argv[first + 1];
    size_t n = (size_t)(argc - first - 2);
    double *values = calloc(6 * n, sizeof(double));
    if (values == NULL) return 1;
    double *strain = values, *mean = values + n, *aleatoric = values + 2 * n,
           *epistemic = values + 3 * n, *total = values + 4 * n, *tangent = values + 5 * n;
    for (size_t i = 0; i < n; i++) strain[i] = strtod(argv[first + 2 + (int)i], NULL);

    char error[4096] = "";
    curl_global_init(CURL_GLOBAL_DEFAULT);
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
