// OpenSSL's libcrypto (3.x), for the Sealing module: AES-256-GCM, HKDF-SHA256, random bytes, wiping.
// The GCM controls are macros and variadic-free wrappers here, so Swift sees typed functions.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

static inline int ccrypto_gcm_set_iv_length(EVP_CIPHER_CTX *context, int length) {
    return EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_IVLEN, length, NULL);
}

static inline int ccrypto_gcm_get_tag(EVP_CIPHER_CTX *context, unsigned char *tag, int length) {
    return EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, length, tag);
}

static inline int ccrypto_gcm_set_tag(EVP_CIPHER_CTX *context, const unsigned char *tag, int length) {
    return EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, length, (void *)tag);
}

/// HKDF-SHA256 (extract then expand, RFC 5869) through the EVP_PKEY interface; 1 on success.
static inline int ccrypto_hkdf_sha256(
    const unsigned char *ikm, size_t ikm_length, const unsigned char *salt, size_t salt_length,
    const unsigned char *info, size_t info_length, unsigned char *out, size_t out_length) {
    EVP_PKEY_CTX *context = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    if (context == NULL) return 0;
    size_t length = out_length;
    int ok = EVP_PKEY_derive_init(context) > 0
        && EVP_PKEY_CTX_hkdf_mode(context, EVP_PKEY_HKDEF_MODE_EXTRACT_AND_EXPAND) > 0
        && EVP_PKEY_CTX_set_hkdf_md(context, EVP_sha256()) > 0
        && EVP_PKEY_CTX_set1_hkdf_salt(context, salt, (int)salt_length) > 0
        && EVP_PKEY_CTX_set1_hkdf_key(context, ikm, (int)ikm_length) > 0
        && EVP_PKEY_CTX_add1_hkdf_info(context, info, (int)info_length) > 0
        && EVP_PKEY_derive(context, out, &length) > 0 && length == out_length;
    EVP_PKEY_CTX_free(context);
    return ok;
}
