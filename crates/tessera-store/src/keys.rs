//! `signing_keys`: JWS signing keys, private parts sealed, with rotation and pruning.

use tessera_core::keys::{SigningAlg, StoredKey};
use tessera_core::store::{SigningKeyStore, StoreError};

use crate::{Store, conflict_or_db, corrupt, db};

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    alg: String,
    sealed_private_key: Vec<u8>,
    public_jwk: String,
    created_at: i64,
    activates_at: i64,
    signing_until: Option<i64>,
    publish_until: Option<i64>,
}

impl KeyRow {
    fn into_key(self) -> Result<StoredKey, StoreError> {
        let alg = SigningAlg::parse(&self.alg).ok_or_else(|| {
            corrupt("signing_keys", "alg", &self.kid, format!("unknown algorithm `{}`", self.alg))
        })?;
        Ok(StoredKey {
            kid: self.kid,
            alg,
            sealed_private_key: self.sealed_private_key,
            public_jwk: self.public_jwk,
            created_at: self.created_at,
            activates_at: self.activates_at,
            signing_until: self.signing_until,
            publish_until: self.publish_until,
        })
    }
}

impl SigningKeyStore for Store {
    async fn published_keys(&self, now: i64) -> Result<Vec<StoredKey>, StoreError> {
        const SQL: &str = "SELECT kid, alg, sealed_private_key, public_jwk, created_at, \
            activates_at, signing_until, publish_until FROM signing_keys \
            WHERE publish_until IS NULL OR publish_until > $1 ORDER BY created_at, kid";
        let rows: Vec<KeyRow> = with_reader!(self, |pool| sqlx::query_as(SQL)
            .bind(now)
            .fetch_all(pool)
            .await
            .map_err(db)?);
        rows.into_iter().map(KeyRow::into_key).collect()
    }

    async fn add_key_retiring_others(
        &self,
        new: &StoredKey,
        publish_until: i64,
    ) -> Result<(), StoreError> {
        // Every current key of the algorithm stops signing when the new one starts.
        const RETIRE: &str = "UPDATE signing_keys SET signing_until = $1, publish_until = $2 \
            WHERE alg = $3 AND signing_until IS NULL";
        const INSERT: &str = "INSERT INTO signing_keys (kid, alg, sealed_private_key, \
            public_jwk, created_at, activates_at, signing_until, publish_until) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        with_writer!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db)?;
            sqlx::query(RETIRE)
                .bind(new.activates_at)
                .bind(publish_until)
                .bind(new.alg.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            sqlx::query(INSERT)
                .bind(new.kid.as_str())
                .bind(new.alg.as_str())
                .bind(new.sealed_private_key.as_slice())
                .bind(new.public_jwk.as_str())
                .bind(new.created_at)
                .bind(new.activates_at)
                .bind(new.signing_until)
                .bind(new.publish_until)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_or_db(e, || format!("signing key `{}`", new.kid)))?;
            tx.commit().await.map_err(db)?;
        });
        Ok(())
    }

    async fn prune_keys(&self, now: i64) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM signing_keys WHERE publish_until <= $1";
        Ok(with_writer!(self, |pool| sqlx::query(SQL)
            .bind(now)
            .execute(pool)
            .await
            .map_err(db)?
            .rows_affected()))
    }
}
