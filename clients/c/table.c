/*
 * The model as a table: download the export's CSV once, then evaluate it locally by
 * binary search and linear interpolation, as a finite-element code does with a material
 * curve. The table's header states its interpolation error in total SDs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "surrogate.h"

int surrogate_table_parse(char *csv, surrogate_table *table) {
    size_t capacity = 1024, rows = 0, columns = 0;
    memset(table, 0, sizeof *table);
    char *saveptr = NULL;
    int header_seen = 0;
    double *data = NULL;
    for (char *line = strtok_r(csv, "\n", &saveptr); line != NULL;
         line = strtok_r(NULL, "\n", &saveptr)) {
        if (line[0] == '#') {
            const char *key = "# max_interpolation_error: ";
            if (strncmp(line, key, strlen(key)) == 0)
                table->max_error = strtod(line + strlen(key), NULL);
            continue;
        }
        if (!header_seen) { /* strain,mean,...: count the columns after strain */
            header_seen = 1;
            for (const char *p = line; *p; p++) columns += (*p == ',');
            if (columns == 0 || columns > SURROGATE_MAX_COLUMNS) return -1;
            data = malloc(capacity * (columns + 1) * sizeof(double));
            if (data == NULL) return -1;
            continue;
        }
        if (rows == capacity) {
            capacity *= 2;
            double *grown = realloc(data, capacity * (columns + 1) * sizeof(double));
            if (grown == NULL) {
                free(data);
                return -1;
            }
            data = grown;
        }
        char *p = line, *end;
        for (size_t k = 0; k <= columns; k++) {
            data[rows * (columns + 1) + k] = strtod(p, &end);
            if (end == p) {
                free(data);
                return -1;
            }
            p = (*end == ',') ? end + 1 : end;
        }
        rows++;
    }
    if (rows < 2) {
        free(data);
        return -1;
    }
    table->points = rows;
    table->columns = columns;
    table->strain = malloc(rows * sizeof(double));
    table->values = malloc(rows * columns * sizeof(double));
    if (table->strain == NULL || table->values == NULL) {
        free(data);
        surrogate_table_free(table);
        return -1;
    }
    for (size_t i = 0; i < rows; i++) {
        table->strain[i] = data[i * (columns + 1)];
        memcpy(table->values + i * columns, data + i * (columns + 1) + 1,
               columns * sizeof(double));
    }
    free(data);
    return 0;
}

int surrogate_table_download(const char *base_url, const char *model, const char *query,
                             surrogate_table *table, char *errbuf, size_t errlen) {
    char url[2048];
    surrogate_buffer response = {NULL, 0};
    long status = 0;
    int rc = -1;
    snprintf(url, sizeof url, "%s/v1/models/%s/export?format=csv%s%s", base_url, model,
             query ? "&" : "", query ? query : "");
    CURL *curl = curl_easy_init();
    if (curl == NULL) return -1;
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, surrogate_append);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 600L);
    CURLcode result = curl_easy_perform(curl);
    if (result != CURLE_OK) {
        snprintf(errbuf, errlen, "%s", curl_easy_strerror(result));
    } else {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (status != 200) {
            snprintf(errbuf, errlen, "%s", response.data ? response.data : "");
            rc = (int)status;
        } else if (response.data == NULL || surrogate_table_parse(response.data, table)) {
            snprintf(errbuf, errlen, "not an export table: %.200s",
                     response.data ? response.data : "");
        } else {
            rc = 0;
        }
    }
    curl_easy_cleanup(curl);
    free(response.data);
    return rc;
}

void surrogate_table_eval(const surrogate_table *table, double x, double *out) {
    /* The interval [strain[lo], strain[lo + 1]] holding x (the end intervals beyond). */
    size_t lo = 0, hi = table->points - 1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (table->strain[mid] <= x) lo = mid;
        else hi = mid;
    }
    double t = (x - table->strain[lo]) / (table->strain[hi] - table->strain[lo]);
    const double *a = table->values + lo * table->columns;
    const double *b = table->values + hi * table->columns;
    for (size_t k = 0; k < table->columns; k++) out[k] = a[k] + t * (b[k] - a[k]);
}

void surrogate_table_free(surrogate_table *table) {
    free(table->strain);
    free(table->values);
    table->strain = table->values = NULL;
    table->points = table->columns = 0;
}
