/* The model directory's JSON files, read with cJSON: the BERT shape
 * (config.json), the sequence limit (sentence_bert_config.json), and the
 * sentence-transformers pipeline around the encoder (modules.json,
 * 1_Pooling/config.json, tokenizer_config.json), of which this example runs
 * the one all-MiniLM-L6-v2 uses: mean pooling, then L2 normalisation. */
#ifndef MINILM_CONFIG_H
#define MINILM_CONFIG_H

typedef struct minilm_config {
    int vocab_size, hidden, layers, heads, intermediate;
    int max_positions, type_vocab;
    float layer_norm_eps;
    /* sentence-transformers truncates every sentence to this many tokens,
     * [CLS] and [SEP] included. */
    int max_seq_length;
    int normalize; /* modules.json ends in a Normalize module */
} minilm_config;

/* Dies with the file and the field when something is missing, malformed or
 * describes a model this example does not run. */
void config_load(const char *model_dir, minilm_config *c);

#endif
