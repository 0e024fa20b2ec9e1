//! The queries no other store test reaches, run on both backends, so that
//! every query of the store has run on SQLite and on PostgreSQL.

use crate::*;

#[tokio::test]
async fn every_remaining_query_round_trips() {
    for s in crate::testing::stores().await {
        eprintln!("on {}", s.backend());
        s.seed_demo().await.unwrap();
        assert!(s.tenant_exists(1).await.unwrap());
        assert!(!s.tenant_exists(999).await.unwrap());

        // Users and passwords.
        let u = s
            .check_password("agent1@demo.local", "demo1234")
            .await
            .unwrap()
            .expect("the demo password");
        assert_eq!(s.user_by_id(u.id).await.unwrap().email, "agent1@demo.local");
        let hash = hash_password("new-pass-1").unwrap();
        assert!(s.set_user_password(u.id, &hash).await.unwrap());
        assert!(s
            .check_password("agent1@demo.local", "demo1234")
            .await
            .unwrap()
            .is_none());
        assert!(s
            .check_password("agent1@demo.local", "new-pass-1")
            .await
            .unwrap()
            .is_some());
        assert!(!s.set_user_password(9_999, &hash).await.unwrap());

        // Groups, skills, DIDs.
        assert!(s.update_group(1, "G001", "Renamed", 30).await.unwrap());
        assert!(!s.update_group(1, "G999", "None", 0).await.unwrap());
        let seat = s.seat_of_user(u.id).await.unwrap().unwrap();
        assert_eq!(seat.acw_seconds, 30);
        assert_eq!(s.group_numbers(1).await.unwrap(), vec!["G001".to_string()]);
        let skills = vec![("es".to_string(), 5u8), ("vip".to_string(), 2u8)];
        assert!(s.set_seat_skills(1, u.id, &skills).await.unwrap());
        assert_eq!(s.seat_of_user(u.id).await.unwrap().unwrap().skills, skills);
        let g2 = s.create_group(1, "G002", "Second", 0).await.unwrap();
        s.route_did("12025550170", g2).await.unwrap();
        assert!(matches!(
            s.did_route("12025550170").await.unwrap(),
            Some(DidRoute::Group { group_no, .. }) if group_no == "G002"
        ));

        // Rates and the blacklist.
        let rates = vec![
            ("1".to_string(), 900, 60, 60),
            ("1202".to_string(), 500, 30, 6),
        ];
        s.set_rates(1, &rates).await.unwrap();
        let all: Vec<_> = s
            .all_rates()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.0 == 1)
            .map(|(_, p, m, f, n)| (p, m, f, n))
            .collect();
        assert_eq!(all, rates);
        s.set_blacklisted(1, "12025550199", true).await.unwrap();
        s.set_blacklisted(1, "12025550198", true).await.unwrap();
        s.set_blacklisted(1, "12025550199", false).await.unwrap();
        assert_eq!(
            s.blacklist(1).await.unwrap(),
            vec!["12025550166".to_string(), "12025550198".to_string()],
            "the demo's blacklisted number and the one added"
        );

        // Single sign-on and origins.
        let sso = TenantSso {
            issuer: "https://id.example.com".into(),
            client_id: "seatline".into(),
            client_secret: Some("s3cret".into()),
            allowed_domains: vec!["example.com".into()],
        };
        s.set_tenant_sso(1, &sso).await.unwrap();
        assert_eq!(s.tenant_sso(1).await.unwrap(), Some(sso));
        assert!(s.delete_tenant_sso(1).await.unwrap());
        assert!(!s.delete_tenant_sso(1).await.unwrap());
        assert_eq!(s.tenant_sso(1).await.unwrap(), None);
        let origins = vec![
            "https://crm.example.com".to_string(),
            "https://b.example.com:8443".to_string(),
        ];
        s.set_tenant_origins(1, &origins).await.unwrap();
        assert_eq!(s.tenant_origins(1).await.unwrap(), origins);
        s.set_tenant_origins(1, &origins[1..]).await.unwrap();
        assert_eq!(s.tenant_origins(1).await.unwrap(), origins[1..].to_vec());

        // Sessions and sign-in tokens.
        let (token, id) = s.create_session(u.id, 1_000).await.unwrap();
        s.touch_session(&id, 50_000).await.unwrap();
        assert!(matches!(
            s.check_session(&token, 10_000, 59_000).await.unwrap(),
            SessionCheck::Valid { .. }
        ));
        s.create_sign_in_token(u.id, 0, 1_000).await.unwrap();
        assert!(s.purge_sign_in_tokens(2_000).await.unwrap() >= 1);

        // Recording settings.
        let rec = RecordingSetting {
            mode: "all".into(),
            retention_days: 7,
            groups: vec![("G002".into(), "off".into())],
        };
        s.set_recording_setting(1, &rec).await.unwrap();
        let all = s.recording_settings().await.unwrap();
        assert_eq!(
            all.iter().find(|(t, _)| *t == 1).map(|(_, r)| r),
            Some(&rec)
        );

        // Webhook deliveries.
        s.set_webhook(
            1,
            &Webhook {
                url: "http://127.0.0.1:9/h".into(),
                secret: "x".repeat(16),
            },
        )
        .await
        .unwrap();
        s.save_call(&CallRow {
            id: "ended".into(),
            tenant_id: 1,
            direction: 1,
            start_ms: 1,
            hangup_ms: Some(2),
            recorded: true,
            ..Default::default()
        })
        .await
        .unwrap();
        assert!(s.call("ended").await.unwrap().unwrap().recorded);
        let d = s.claim_deliveries(10, 20, 10).await.unwrap();
        assert_eq!(d.len(), 1);
        assert!(
            s.claim_deliveries(15, 25, 10).await.unwrap().is_empty(),
            "taken until 20"
        );
        s.set_delivery_body(d[0].id, "{\"x\":1}").await.unwrap();
        s.delivery_attempted(d[0].id, 11, Some(500), false, Some("HTTP 500"), Some(99))
            .await
            .unwrap();
        let got = &s.deliveries(1, 10).await.unwrap()[0];
        assert_eq!(
            (got.body.as_deref(), got.attempts, got.next_ms),
            (Some("{\"x\":1}"), 1, 99)
        );
        assert!(s.delete_webhook(1).await.unwrap());
        assert!(!s.delete_webhook(1).await.unwrap());
        assert_eq!(s.webhook(1).await.unwrap(), None);
    }
}
