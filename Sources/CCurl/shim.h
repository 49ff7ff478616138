// Typed, non-variadic wrappers around libcurl for Swift (which cannot call C variadic functions such
// as curl_easy_setopt, nor read the CURLMsg.data union). One wrapper per argument type, nothing else.
// Model: swift-corelibs-foundation's CFURLSessionInterface.c.
#ifndef LHTTP_CCURL_SHIM_H
#define LHTTP_CCURL_SHIM_H

#include <curl/curl.h>

typedef size_t (*lhttp_curl_data_callback)(char *ptr, size_t size, size_t nmemb, void *userdata);

static inline CURLcode lhttp_curl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode lhttp_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode lhttp_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode lhttp_curl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode lhttp_curl_easy_setopt_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode lhttp_curl_easy_setopt_callback(CURL *handle, CURLoption option, lhttp_curl_data_callback value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode lhttp_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode lhttp_curl_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLMcode lhttp_curl_multi_setopt_long(CURLM *handle, CURLMoption option, long value) {
    return curl_multi_setopt(handle, option, value);
}

static inline int lhttp_curl_msg_is_done(const CURLMsg *message) {
    return message->msg == CURLMSG_DONE;
}

static inline CURL *lhttp_curl_msg_easy_handle(const CURLMsg *message) {
    return message->easy_handle;
}

static inline CURLcode lhttp_curl_msg_result(const CURLMsg *message) {
    return message->data.result;
}

#endif
