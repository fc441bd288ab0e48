/* Unit tests of the config's "resources" section: the plain number form
 * (a concurrency limit), the object form with a rate, and rate strings.
 * No Redis. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "test.h"

TEST(config_rate_parse)
{
    int64_t n = 0, ms = 0;
    ASSERT_EQ(config_parse_rate("600/1m", &n, &ms), 0);
    ASSERT_EQ(n, 600);
    ASSERT_EQ(ms, 60000);
    ASSERT_EQ(config_parse_rate("20/1s", &n, &ms), 0);
    ASSERT_EQ(n, 20);
    ASSERT_EQ(ms, 1000);
    ASSERT_EQ(config_parse_rate("100/s", &n, &ms), 0);
    ASSERT_EQ(ms, 1000);
    ASSERT_EQ(config_parse_rate("5/250ms", &n, &ms), 0);
    ASSERT_EQ(ms, 250);
    ASSERT_EQ(config_parse_rate("3/h", &n, &ms), 0);
    ASSERT_EQ(ms, 3600000);
    const char *bad[] = {"600",   "/1m",    "0/1m",   "-1/1s",  "10/0s",
                         "10/2d", "10/xyz", "1.5/1s", "10 /1s", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_EQ(config_parse_rate(bad[i], &n, &ms), -1);
}

static int load_file_json(config_t *c, const char *json, char *err, size_t errlen)
{
    char path[] = "/tmp/jobd-rate-XXXXXX";
    int fd = mkstemp(path);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    char *argv[] = {"jobd", "--config", path, NULL};
    unsetenv("JOBD_CONFIG");
    int rc = config_load(c, 3, argv, err, errlen);
    unlink(path);
    return rc;
}

TEST(config_resources_forms)
{
    config_t c;
    char err[512];
    ASSERT_EQ(load_file_json(&c,
                             "{\"resources\": {\"a\": 16, \"b\": {\"concurrency\": 4, \"rate\": "
                             "\"600/1m\"}, \"c\": {\"rate\": \"20/1s\"}}}",
                             err, sizeof err),
              CONFIG_OK);
    ASSERT_EQ(json_integer_value(json_object_get(c.resources, "a")), 16);
    ASSERT_EQ(json_integer_value(json_object_get(c.resources, "b")), 4);
    ASSERT_EQ(json_integer_value(json_object_get(c.resources, "c")), CONFIG_RES_UNLIMITED);
    ASSERT(json_object_get(c.rates, "a") == NULL);
    ASSERT_EQ(json_integer_value(json_array_get(json_object_get(c.rates, "b"), 0)), 600);
    ASSERT_EQ(json_integer_value(json_array_get(json_object_get(c.rates, "b"), 1)), 60000);
    ASSERT_EQ(json_integer_value(json_array_get(json_object_get(c.rates, "c"), 1)), 1000);
    config_free(&c);

    ASSERT_EQ(load_file_json(&c, "{\"resources\": {\"a\": {\"rate\": \"fast\"}}}", err, sizeof err),
              CONFIG_INVALID);
    ASSERT_CONTAINS(err, "resources.a.rate");
    config_free(&c);
    ASSERT_EQ(load_file_json(&c, "{\"resources\": {\"a\": {\"burst\": 3}}}", err, sizeof err),
              CONFIG_INVALID);
    ASSERT_CONTAINS(err, "resources.a");
    config_free(&c);
    ASSERT_EQ(load_file_json(&c, "{\"resources\": {\"a\": {}}}", err, sizeof err), CONFIG_INVALID);
    config_free(&c);
}
